"""Running one activity work item and building its `ActivityResponse`.

Sync activities run through `run_sync` on the worker's thread pool; `async
def` activities through `run_async` on the worker's event loop. Both turn
every exception into failure details, because a failed activity is a normal
result for the orchestration that scheduled it. An activity name the worker
does not host is reported the same way (never by abandoning the item, which
would only hand it back to the same sidecar queue).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from durable import _json
from durable._activity import Activity, ActivityContext
from durable._proto import orchestrator_service_pb2 as pb
from durable.errors import ActivityNotRegisteredError, FailureDetails

__all__ = ["ActivityRunner"]


class ActivityRunner:
    """The activities a worker hosts, by name, and how to run one work item."""

    def __init__(self, activities: Mapping[str, Activity[Any, Any]]) -> None:
        self.activities = activities

    def lookup(self, request: pb.ActivityRequest) -> Activity[Any, Any] | None:
        """Return the activity a work item names, or None if it is not hosted."""
        return self.activities.get(request.name)

    def run_sync(self, activity: Activity[Any, Any] | None, request: pb.ActivityRequest, token: str) -> pb.ActivityResponse:
        """Run a sync activity (or report a missing one) and return the response to send."""
        response = _new_response(request, token)
        if activity is None:
            _set_failure(response, self._not_registered(request.name))
            return response
        try:
            context = _context(request)
            if activity.takes_input:
                output = activity.fn(context, _decode_input(activity, request))
            else:
                output = activity.fn(context)
            _set_result(response, activity, output)
        except Exception as exc:  # noqa: BLE001 - every activity failure is reported to the orchestration
            _set_failure(response, exc)
        return response

    async def run_async(self, activity: Activity[Any, Any], request: pb.ActivityRequest, token: str) -> pb.ActivityResponse:
        """Run an `async def` activity on the running event loop and return the response to send."""
        response = _new_response(request, token)
        try:
            context = _context(request)
            if activity.takes_input:
                output = await activity.fn(context, _decode_input(activity, request))
            else:
                output = await activity.fn(context)
            _set_result(response, activity, output)
        except Exception as exc:  # noqa: BLE001 - every activity failure is reported to the orchestration
            _set_failure(response, exc)
        return response

    def _not_registered(self, name: str) -> ActivityNotRegisteredError:
        known = ", ".join(sorted(self.activities)) or "none"
        return ActivityNotRegisteredError(
            f"activity {name!r} is not registered on this worker (registered: {known}); "
            "pass it to Worker(activities=[...])"
        )


def _new_response(request: pb.ActivityRequest, token: str) -> pb.ActivityResponse:
    return pb.ActivityResponse(
        instanceId=request.orchestrationInstance.instanceId,
        taskId=request.taskId,
        completionToken=token,
    )


def _context(request: pb.ActivityRequest) -> ActivityContext:
    return ActivityContext(
        instance_id=request.orchestrationInstance.instanceId,
        task_id=request.taskId,
        name=request.name,
    )


def _decode_input(activity: Activity[Any, Any], request: pb.ActivityRequest) -> Any:
    text = request.input.value if request.HasField("input") else None
    return _json.decode(text, activity.input_type)


def _set_result(response: pb.ActivityResponse, activity: Activity[Any, Any], output: object) -> None:
    text = _json.encode(output, activity.output_type)
    if text is not None:
        response.result.value = text


def _set_failure(response: pb.ActivityResponse, exc: BaseException) -> None:
    details = FailureDetails.from_exception(exc).to_proto()
    # NOTE: the official in-memory sidecar (durabletask 1.12) records a failure
    # with an empty message as a success, so an exception raised without a
    # message reports its type as the message.
    if not details.errorMessage:
        details.errorMessage = details.errorType
    response.failureDetails.CopyFrom(details)
