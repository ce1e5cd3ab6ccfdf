"""Sending work-item results to the sidecar: completion, retry and abandon calls.

Results go out with the stub's non-blocking `future()` form, so the thread that
produced a result moves on at once. The reply callback, on a gRPC thread,
finishes the job. A call that fails with a transient status is retried with
backoff from the worker's event loop for up to a minute. A result the channel
refuses as too large is replaced by a failure that says so, so the instance
does not wait for a result that can never arrive. Anything else is abandoned
(given back for redelivery) and logged: no result is dropped silently.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import threading
from collections.abc import Callable
from typing import Any, Union

import grpc

from durable._channel import Metadata
from durable._proto import orchestrator_service_pb2 as pb
from durable._proto import orchestrator_service_pb2_grpc as pb_grpc
from durable._worker_jobs import Job, JobKind
from durable.errors import FailureDetails, PayloadError

__all__ = ["Delivery", "Response", "describe_error"]

logger = logging.getLogger("durable.worker")

Response = Union[pb.OrchestratorResponse, pb.ActivityResponse]

_COMPLETE_TIMEOUT = 30.0
ABANDON_TIMEOUT = 5.0

_RETRY_WINDOW = 60.0
_RETRY_CAP = 5.0
_RETRYABLE_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
    }
)


class Delivery:
    """Sends completions and abandons for one worker; `finish` frees a job's place in its gate."""

    def __init__(
        self,
        stub: pb_grpc.TaskHubSidecarServiceStub,
        metadata: Metadata | None,
        loop: asyncio.AbstractEventLoop,
        stopping: threading.Event,
        finish: Callable[[Job], None],
    ) -> None:
        self._stub = stub
        self._metadata = metadata
        self._loop = loop
        self._stopping = stopping
        self._finish = finish

    def send(self, job: Job, response: Response) -> None:
        """Send a result without blocking; the reply callback finishes the job or retries."""
        if job.abandoned:
            logger.info("discarding the result of %s: it was abandoned when the worker stopped", job.describe())
            self._finish(job)
            return
        try:
            if isinstance(response, pb.OrchestratorResponse):
                future = self._stub.CompleteOrchestratorTask.future(
                    response, timeout=_COMPLETE_TIMEOUT, metadata=self._metadata
                )
            else:
                future = self._stub.CompleteActivityTask.future(
                    response, timeout=_COMPLETE_TIMEOUT, metadata=self._metadata
                )
        except ValueError as exc:  # the channel is closed: stop() already gave up on this job
            logger.error("could not send the result of %s: %s", job.describe(), exc)
            self._finish(job)
            return
        future.add_done_callback(functools.partial(self._on_reply, job, response))

    def abandon(self, job: Job, reason: str, *, finish: bool = False) -> None:
        """Give a work item back to the sidecar so that it is redelivered, and log why."""
        job.abandoned = True
        logger.warning("abandoning %s: %s", job.describe(), reason)
        future: grpc.Future[Any]
        try:
            if job.kind is JobKind.ACTIVITY:
                future = self._stub.AbandonTaskActivityWorkItem.future(
                    pb.AbandonActivityTaskRequest(completionToken=job.token),
                    timeout=ABANDON_TIMEOUT,
                    metadata=self._metadata,
                )
            else:
                future = self._stub.AbandonTaskOrchestratorWorkItem.future(
                    pb.AbandonOrchestrationTaskRequest(completionToken=job.token),
                    timeout=ABANDON_TIMEOUT,
                    metadata=self._metadata,
                )
            future.add_done_callback(functools.partial(log_abandon_failure, job.describe()))
        except ValueError as exc:  # the channel is already closed
            logger.error("could not abandon %s: %s", job.describe(), exc)
        if finish:
            self._finish(job)

    def _on_reply(self, job: Job, response: Response, future: grpc.Future[pb.CompleteTaskResponse]) -> None:
        try:
            error = future.exception()
        except grpc.FutureCancelledError:
            # Only closing the channel cancels calls; stop() abandoned the job first.
            logger.error("the result of %s was not sent: the worker stopped", job.describe())
            self._finish(job)
            return
        if error is None:
            self._finish(job)
            return

        code = error.code() if isinstance(error, grpc.RpcError) else None
        if code is grpc.StatusCode.RESOURCE_EXHAUSTED and not _is_size_failure(response):
            logger.error("the result of %s is too large to send: %s", job.describe(), describe_error(error))
            self.send(job, _too_large(job, response, error))
            return

        failing_for = job.note_delivery_failure()
        if code in _RETRYABLE_CODES and failing_for < _RETRY_WINDOW and not self._stopping.is_set():
            delay = min(_RETRY_CAP, 0.1 * 2.0 ** (job.delivery_attempts - 1)) * random.uniform(0.5, 1.0)
            logger.warning(
                "could not send the result of %s (%s); retrying in %.2f s",
                job.describe(),
                describe_error(error),
                delay,
            )
            try:
                self._loop.call_soon_threadsafe(self._loop.call_later, delay, self.send, job, response)
                return
            except RuntimeError:  # the loop closed meanwhile: the worker stopped
                pass

        self.abandon(job, f"its result could not be sent ({describe_error(error)})", finish=True)


def _too_large(job: Job, response: Response, error: BaseException) -> Response:
    """Replace a result the channel rejected as too large by a failure that states the limit."""
    message = (
        f"the result of {job.describe()} is larger than the gRPC message limit and was not sent "
        f"({describe_error(error)}); raise max_message_bytes on the worker and the sidecar"
    )
    details = FailureDetails.from_exception(PayloadError(message)).to_proto()
    if isinstance(response, pb.ActivityResponse):
        return pb.ActivityResponse(
            instanceId=response.instanceId,
            taskId=response.taskId,
            completionToken=response.completionToken,
            failureDetails=details,
        )
    # The failure replaces every action: the instance ends here, so what it
    # scheduled in this run no longer matters.
    last_id = max((action.id for action in response.actions), default=0)
    failed = pb.OrchestratorAction(
        id=last_id + 1,
        completeOrchestration=pb.CompleteOrchestrationAction(
            orchestrationStatus=pb.ORCHESTRATION_STATUS_FAILED, failureDetails=details
        ),
    )
    return pb.OrchestratorResponse(
        instanceId=response.instanceId, completionToken=response.completionToken, actions=[failed]
    )


def _is_size_failure(response: Response) -> bool:
    if isinstance(response, pb.ActivityResponse):
        return response.failureDetails.errorType.endswith("PayloadError")
    if len(response.actions) != 1:
        return False
    return response.actions[0].completeOrchestration.failureDetails.errorType.endswith("PayloadError")


def log_abandon_failure(work_item: str, future: grpc.Future[Any]) -> None:
    """Log an abandon call that failed (reply callback)."""
    try:
        error = future.exception()
    except grpc.FutureCancelledError:
        return
    if error is not None:
        logger.error(
            "could not abandon %s (%s); the sidecar redelivers it when its lease expires", work_item, describe_error(error)
        )


def describe_error(error: BaseException) -> str:
    """Return `CODE: details` for a gRPC error, `repr` for anything else."""
    if isinstance(error, grpc.RpcError):
        code = error.code()
        name = code.name if code is not None else "UNKNOWN"
        return f"{name}: {error.details()}"
    if isinstance(error, grpc.FutureCancelledError):
        return "cancelled"
    return repr(error)
