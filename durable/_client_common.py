"""Requests, replies and error mapping shared by `Client` and `AsyncClient`.

Both clients build the same protobuf requests and read the same replies. Only
the transport differs (grpc versus grpc.aio), so everything but the calls
themselves lives here.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any, NoReturn

import grpc

from durable import _json
from durable._machine import StateMachine
from durable._orchestration import Event, Orchestration, registry
from durable._proto import orchestrator_service_pb2 as pb
from durable._state import InstanceExistsError, InstanceNotFoundError, OrchestrationStatus
from durable.errors import OrchestrationFailedError, PayloadError

__all__ = [
    "DEFAULT_WAIT_TIMEOUT",
    "WAIT_SLICE",
    "start_request",
    "event_request",
    "terminate_request",
    "query_request",
    "purge_filter_request",
    "next_page_token",
    "raise_rpc_error",
    "is_wait_expired",
    "timeout_error",
    "lookup_class",
    "step_is_known_without_history",
    "result_of",
]

# The default for every wait (and for `result()`), in seconds; None waits without limit.
DEFAULT_WAIT_TIMEOUT = 60.0

# Waits are sent as calls of at most this many seconds each, because some
# sidecars end a wait without a deadline after 30 s.
WAIT_SLICE = 25.0


def start_request(
    name: str,
    version: str | None,
    input_text: str | None,
    instance_id: str | None,
    start_at: datetime | None,
    tags: Mapping[str, str] | None,
) -> pb.CreateInstanceRequest:
    """Build a `StartInstance` request; a missing instance id becomes a random UUID."""
    request = pb.CreateInstanceRequest(instanceId=instance_id or uuid.uuid4().hex, name=name)
    if version is not None:
        request.version.value = version
    if input_text is not None:
        request.input.value = input_text
    if start_at is not None:
        # A naive datetime is read as UTC, as the orchestration clock is UTC.
        aware = start_at if start_at.tzinfo is not None else start_at.replace(tzinfo=timezone.utc)
        request.scheduledStartTimestamp.FromDatetime(aware.astimezone(timezone.utc))
    if tags:
        request.tags.update(tags)
    request.requestTime.GetCurrentTime()
    return request


def event_request(instance_id: str, event: Event[Any] | str, data: object) -> pb.RaiseEventRequest:
    """Build a `RaiseEvent` request, encoding `data` with the event's declared type."""
    if isinstance(event, Event):
        name, declared = event.name, event.type
    else:
        name, declared = event, None
    request = pb.RaiseEventRequest(instanceId=instance_id, name=name)
    text = _json.encode(data, declared)
    if text is not None:
        request.input.value = text
    return request


def terminate_request(instance_id: str, output: object, recursive: bool) -> pb.TerminateRequest:
    """Build a `TerminateInstance` request; `output` becomes the instance's output."""
    request = pb.TerminateRequest(instanceId=instance_id, recursive=recursive)
    text = _json.encode(output)
    if text is not None:
        request.output.value = text
    return request


def query_request(
    statuses: Iterable[OrchestrationStatus] | None,
    created_from: datetime | None,
    created_to: datetime | None,
    instance_id_prefix: str | None,
    fetch_payloads: bool,
    page_size: int,
    token: str | None,
) -> pb.QueryInstancesRequest:
    """Build one page's `QueryInstances` request."""
    if page_size < 1:
        raise ValueError(f"page_size must be at least 1, got {page_size}")
    query = pb.InstanceQuery(maxInstanceCount=page_size, fetchInputsAndOutputs=fetch_payloads)
    if statuses is not None:
        query.runtimeStatus.extend(status.to_proto() for status in statuses)
    if created_from is not None:
        query.createdTimeFrom.FromDatetime(_utc(created_from))
    if created_to is not None:
        query.createdTimeTo.FromDatetime(_utc(created_to))
    if instance_id_prefix:
        query.instanceIdPrefix.value = instance_id_prefix
    if token:
        query.continuationToken.value = token
    return pb.QueryInstancesRequest(query=query)


def next_page_token(response: pb.QueryInstancesResponse, previous: str | None) -> str | None:
    """Return the token of the next page, or None after the last page.

    No token, an empty one, "0" (the official in-memory sidecar) or the same
    token twice all mean there are no more pages.
    """
    if not response.HasField("continuationToken"):
        return None
    token = response.continuationToken.value
    if not token or token == "0" or token == previous:
        return None
    return token


def purge_filter_request(
    created_from: datetime | None,
    created_to: datetime | None,
    statuses: Iterable[OrchestrationStatus] | None,
    recursive: bool,
) -> pb.PurgeInstancesRequest:
    """Build a `PurgeInstances` request that purges every terminal instance matching a filter."""
    purge_filter = pb.PurgeInstanceFilter()
    if created_from is not None:
        purge_filter.createdTimeFrom.FromDatetime(_utc(created_from))
    if created_to is not None:
        purge_filter.createdTimeTo.FromDatetime(_utc(created_to))
    if statuses is not None:
        for status in statuses:
            if not status.is_terminal:
                raise ValueError(f"only terminal instances can be purged, but statuses includes {status.name}")
            purge_filter.runtimeStatus.append(status.to_proto())
    return pb.PurgeInstancesRequest(purgeInstanceFilter=purge_filter, recursive=recursive)


def raise_rpc_error(error: grpc.RpcError, instance_id: str | None, action: str, target: str) -> NoReturn:
    """Raise the durable error for a failed call, chained to the gRPC error.

    NOT_FOUND becomes `InstanceNotFoundError`, ALREADY_EXISTS
    `InstanceExistsError`, RESOURCE_EXHAUSTED `PayloadError` (the message is
    larger than a gRPC limit), UNAVAILABLE `ConnectionError` and
    FAILED_PRECONDITION `ValueError`. Other errors are re-raised unchanged.
    """
    code = error.code()
    details = error.details() or ""
    subject = f"orchestration instance {instance_id!r}" if instance_id else "the request"
    if code is grpc.StatusCode.NOT_FOUND and instance_id is not None:
        raise InstanceNotFoundError(instance_id, f"cannot {action}: {subject} not found ({details})") from error
    if code is grpc.StatusCode.ALREADY_EXISTS and instance_id is not None:
        raise InstanceExistsError(instance_id, f"cannot {action}: {subject} already exists ({details})") from error
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
        raise PayloadError(
            f"cannot {action} for {subject}: a message exceeds a gRPC size limit ({details}); "
            "raise max_message_bytes on the client, the worker and the sidecar"
        ) from error
    if code is grpc.StatusCode.UNAVAILABLE:
        raise ConnectionError(
            f"cannot {action}: the sidecar at {target} is unavailable ({details}). "
            f"Is a sidecar running there? Start durable's with `durable sidecar --port PORT`, "
            "or pass the address of your Dapr or Durable Task sidecar"
        ) from error
    if code is grpc.StatusCode.FAILED_PRECONDITION:
        raise ValueError(f"cannot {action} for {subject}: {details}") from error
    raise error


def is_wait_expired(error: grpc.RpcError) -> bool:
    """True when a wait call ended because its deadline passed.

    The official in-memory sidecar returns DEADLINE_EXCEEDED, the Go sidecar CANCELLED.
    """
    return error.code() in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED)


def timeout_error(instance_id: str, verb: str, timeout: float, status: OrchestrationStatus | None) -> TimeoutError:
    """Build the TimeoutError of a wait that ran out, naming the instance and the time waited."""
    last = f" (status {status.name})" if status is not None else ""
    hint = ""
    if status is OrchestrationStatus.PENDING:
        # NOTE: with work-item filters a sidecar holds an instance whose name no
        # connected worker hosts, so a missing registration shows up as PENDING.
        hint = (
            "; no worker has started it yet: is a worker connected to this sidecar, and does it "
            "host the orchestration (Worker(orchestrations=[...]))?"
        )
    return TimeoutError(f"orchestration instance {instance_id!r} did not {verb} within {timeout:g} s{last}{hint}")


def lookup_class(name: str, version: str | None) -> type[Orchestration[Any, Any]] | None:
    """Find the orchestration class registered under a name (and version), if imported in this process."""
    exact = registry.get((name, version))
    if exact is not None:
        return exact
    for (registered, _), cls in registry.items():
        if registered == name:
            return cls
    return None


def step_is_known_without_history(machine: StateMachine, status: OrchestrationStatus) -> tuple[bool, str | None]:
    """Return (True, step) when the step needs no history: single-step machines and PENDING instances."""
    if status is OrchestrationStatus.PENDING:
        return True, None
    if machine.is_single_step:
        return True, machine.start
    return False, None


def result_of(instance_id: str, status: OrchestrationStatus, raw_output: str | None, details: Any, output_type: Any) -> Any:
    """Decode a finished instance's output, or raise `OrchestrationFailedError`."""
    if status is OrchestrationStatus.COMPLETED:
        return _json.decode(raw_output, output_type)
    if status is OrchestrationStatus.FAILED:
        raise OrchestrationFailedError(instance_id, details)
    output_text = f" with output {raw_output}" if raw_output else ""
    raise OrchestrationFailedError(instance_id, None, f"orchestration {instance_id!r} was terminated{output_text}")


def _utc(value: datetime) -> datetime:
    return value.astimezone(timezone.utc) if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
