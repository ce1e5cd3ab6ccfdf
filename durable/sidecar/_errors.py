"""Errors that the sidecar reports to gRPC callers, each tied to one status code."""

from __future__ import annotations

import grpc

__all__ = [
    "RequestError",
    "NotFound",
    "InvalidArgument",
    "AlreadyExists",
    "FailedPrecondition",
    "Unimplemented",
    "DeadlineExceeded",
]


class RequestError(Exception):
    """A request that the sidecar rejects; nothing of it was applied."""

    code = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str, instance_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.instance_id = instance_id


class NotFound(RequestError):
    code = grpc.StatusCode.NOT_FOUND


class InvalidArgument(RequestError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class AlreadyExists(RequestError):
    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(RequestError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class Unimplemented(RequestError):
    code = grpc.StatusCode.UNIMPLEMENTED


class DeadlineExceeded(RequestError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED
