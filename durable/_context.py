"""Per-run orchestration state: actions, pending tasks and event queues.

One `RunContext` lives for one replay of one instance. Orchestration methods
(`call_activity`, `create_timer`, ...) go through it to number actions and
create tasks; the replay runtime feeds it history events, which confirm actions
and complete tasks. Action ids start at 1 and grow by one per action, exactly
as the official Python SDK numbers them, so histories written by either SDK
replay in the other.
"""

from __future__ import annotations

import logging
import uuid
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from durable import _json
from durable._proto import orchestrator_service_pb2 as pb
from durable._retry import RetryPolicy
from durable._task import CompletableTask, Task
from durable.errors import FailureDetails, NonDeterminismError, TaskFailedError

__all__ = ["RunContext", "EventWaitTask", "ContinueAsNewSignal"]

_UUID_NAMESPACE = uuid.UUID("9e952958-5e33-4daf-827f-2fa12937b875")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class ContinueAsNewSignal(BaseException):
    """Unwinds a step after `continue_as_new`; a BaseException so `except Exception` keeps out of the way."""


class EventWaitTask(CompletableTask[Any]):
    """A wait for an external event; it can leave its queue when it loses a `when_any`."""

    __slots__ = ("context", "key", "payload_type", "armed")

    def __init__(self, context: RunContext, name: str, payload_type: Any) -> None:
        super().__init__(f"wait for event {name!r}")
        self.context = context
        self.key = name.casefold()
        self.payload_type = payload_type
        self.armed = False

    def arm(self) -> None:
        if not self.done and not self.armed:
            self.context._arm_wait(self)

    def release(self) -> None:
        if self.armed:
            self.context._release_wait(self)

    def __await__(self):  # type: ignore[no-untyped-def]
        # A wait released by a lost race takes the next event once awaited again.
        self.arm()
        return super().__await__()


class _ActivityTask(CompletableTask[Any]):
    __slots__ = ("output_type",)

    def __init__(self, description: str, output_type: Any) -> None:
        super().__init__(description)
        self.output_type = output_type


class RunContext:
    """Mutable state of one replay; see the module docstring."""

    def __init__(self, instance_id: str, max_timer_interval: timedelta | None = None) -> None:
        self.instance_id = instance_id
        self.max_timer_interval = max_timer_interval
        self.is_replaying = True
        self.now = _EPOCH
        self.next_action_id = 0
        self.uuid_counter = 0
        self.pending_actions: dict[int, pb.OrchestratorAction] = {}
        # Tasks waiting for a completion event, by the id that event carries.
        self.pending_tasks: dict[int, Callable[[pb.HistoryEvent], None]] = {}
        self.waiters: dict[str, deque[EventWaitTask]] = {}
        self.buffered: dict[str, deque[tuple[str, str | None]]] = {}
        self.custom_status: str | None = None
        self.parent_instance_id: str | None = None
        self.name = ""
        self.version: str | None = None

    # ------------------------------------------------------------ actions

    def new_action(self) -> pb.OrchestratorAction:
        self.next_action_id += 1
        action = pb.OrchestratorAction(id=self.next_action_id)
        self.pending_actions[action.id] = action
        return action

    def confirm(self, event: pb.HistoryEvent, kind: str, name: str | None) -> None:
        """Check a confirming history event against the action the code made with that id."""
        action = self.pending_actions.pop(event.eventId, None)
        if action is None:
            raise NonDeterminismError(
                f"history has a {kind} event for action id {event.eventId}, but the code made no "
                f"action with that id on replay; the orchestration code changed since this "
                f"instance started"
            )
        made = action.WhichOneof("orchestratorActionType")
        if made != _ACTION_FOR_EVENT[kind]:
            raise NonDeterminismError(
                f"action id {event.eventId}: history has {kind} but the code made {made} on replay; "
                "the orchestration code changed since this instance started"
            )
        made_name = _action_name(action)
        if name is not None and made_name is not None and made_name.casefold() != name.casefold():
            raise NonDeterminismError(
                f"action id {event.eventId}: history has {kind} {name!r} but the code made "
                f"{made} {made_name!r} on replay; the orchestration code changed since this "
                "instance started"
            )

    # ------------------------------------------------------------ activities and children

    def call_activity(
        self, name: str, input: object, input_type: Any, output_type: Any, retry: RetryPolicy | None
    ) -> Task[Any]:
        encoded = _json.encode(input, input_type)

        def schedule() -> CompletableTask[Any]:
            action = self.new_action()
            action.scheduleTask.name = name
            if encoded is not None:
                action.scheduleTask.input.value = encoded
            task = _ActivityTask(f"activity {name!r}", output_type)
            self.pending_tasks[action.id] = lambda event: self._finish_activity(task, name, event)
            return task

        return self._with_retry(schedule, retry, f"activity {name!r}")

    def _finish_activity(self, task: _ActivityTask, name: str, event: pb.HistoryEvent) -> None:
        if event.HasField("taskCompleted"):
            completed = event.taskCompleted
            text = completed.result.value if completed.HasField("result") else None
            self._complete_decoded(task, text, task.output_type)
        else:
            details = FailureDetails.from_proto(event.taskFailed.failureDetails)
            task.fail_with_details(f"activity {name!r} failed: {details}", details)

    def call_sub_orchestration(
        self,
        name: str,
        input: object,
        input_type: Any,
        output_type: Any,
        instance_id: str | None,
        version: str | None,
        retry: RetryPolicy | None,
    ) -> Task[Any]:
        encoded = _json.encode(input, input_type)
        child_id: list[str] = [instance_id] if instance_id else []

        def schedule() -> CompletableTask[Any]:
            action = self.new_action()
            if not child_id:
                child_id.append(f"{self.instance_id}:{action.id:04x}")
            create = action.createSubOrchestration
            create.instanceId = child_id[0]
            create.name = name
            if version is not None:
                create.version.value = version
            if encoded is not None:
                create.input.value = encoded
            task = _ActivityTask(f"child orchestration {name!r} ({child_id[0]})", output_type)
            self.pending_tasks[action.id] = lambda event: self._finish_child(task, name, child_id[0], event)
            return task

        return self._with_retry(schedule, retry, f"child orchestration {name!r}")

    def _finish_child(self, task: _ActivityTask, name: str, child_id: str, event: pb.HistoryEvent) -> None:
        if event.HasField("subOrchestrationInstanceCompleted"):
            completed = event.subOrchestrationInstanceCompleted
            text = completed.result.value if completed.HasField("result") else None
            self._complete_decoded(task, text, task.output_type)
        else:
            details = FailureDetails.from_proto(event.subOrchestrationInstanceFailed.failureDetails)
            task.fail_with_details(
                f"child orchestration {name!r} ({child_id}) failed: {details}", details
            )

    def _complete_decoded(self, task: CompletableTask[Any], text: str | None, declared: Any) -> None:
        try:
            value = _json.decode(text, declared)
        except Exception as exc:  # noqa: BLE001 - the step sees it at the await
            task.fail(exc)
            return
        task.complete(value)

    def _with_retry(
        self, schedule: Callable[[], CompletableTask[Any]], retry: RetryPolicy | None, what: str
    ) -> Task[Any]:
        first = schedule()
        if retry is None:
            return first
        return _RetryingTask(self, schedule, first, retry, what)

    # ------------------------------------------------------------ timers

    def create_timer(self, fire_at: datetime) -> CompletableTask[None]:
        if fire_at.tzinfo is None:
            fire_at = fire_at.replace(tzinfo=timezone.utc)
        task: CompletableTask[None] = CompletableTask(f"timer until {fire_at.isoformat()}")
        self._schedule_timer_chunk(task, fire_at, self.now)
        return task

    def _schedule_timer_chunk(self, task: CompletableTask[None], final: datetime, base: datetime) -> None:
        due = final
        if self.max_timer_interval is not None and final - base > self.max_timer_interval:
            due = base + self.max_timer_interval
        action = self.new_action()
        action.createTimer.fireAt.FromDatetime(due.astimezone(timezone.utc).replace(tzinfo=None))

        def fired(event: pb.HistoryEvent) -> None:
            fired_at = event.timerFired.fireAt.ToDatetime(tzinfo=timezone.utc)
            if due < final and fired_at < final:
                # NOTE: a long timer is a chain of shorter ones, each with its own id.
                self._schedule_timer_chunk(task, final, fired_at)
            else:
                task.complete(None)

        self.pending_tasks[action.id] = fired

    # ------------------------------------------------------------ external events

    def wait_for_event(self, name: str, payload_type: Any) -> EventWaitTask:
        task = EventWaitTask(self, name, payload_type)
        task.arm()
        return task

    def _arm_wait(self, task: EventWaitTask) -> None:
        buffered = self.buffered.get(task.key)
        if buffered:
            _, payload = buffered.popleft()
            self._complete_decoded(task, payload, task.payload_type)
            return
        task.armed = True
        self.waiters.setdefault(task.key, deque()).append(task)

    def _release_wait(self, task: EventWaitTask) -> None:
        task.armed = False
        queue = self.waiters.get(task.key)
        if queue is not None:
            try:
                queue.remove(task)
            except ValueError:
                pass

    def deliver_event(self, name: str, payload: str | None) -> None:
        key = name.casefold()
        queue = self.waiters.get(key)
        if queue:
            task = queue.popleft()
            task.armed = False
            self._complete_decoded(task, payload, task.payload_type)
            return
        self.buffered.setdefault(key, deque()).append((name, payload))

    def send_event(self, instance_id: str, name: str, payload: str | None) -> None:
        action = self.new_action()
        action.sendEvent.instance.instanceId = instance_id
        action.sendEvent.name = name
        if payload is not None:
            action.sendEvent.data.value = payload

    def carryover_events(self) -> list[pb.HistoryEvent]:
        events: list[pb.HistoryEvent] = []
        for queue in self.buffered.values():
            for name, payload in queue:
                event = pb.HistoryEvent(eventId=-1)
                event.eventRaised.name = name
                if payload is not None:
                    event.eventRaised.input.value = payload
                events.append(event)
        return events

    # ------------------------------------------------------------ misc

    def new_uuid(self) -> uuid.UUID:
        self.uuid_counter += 1
        return uuid.uuid5(_UUID_NAMESPACE, f"{self.instance_id}_{self.now.isoformat()}_{self.uuid_counter}")


class _RetryingTask(CompletableTask[Any]):
    """Runs attempts of an activity or child orchestration, with durable timers between them."""

    __slots__ = ("context", "schedule", "policy", "attempt", "started_at", "what")

    def __init__(
        self,
        context: RunContext,
        schedule: Callable[[], CompletableTask[Any]],
        first: CompletableTask[Any],
        policy: RetryPolicy,
        what: str,
    ) -> None:
        super().__init__(f"{what} with retries")
        self.context = context
        self.schedule = schedule
        self.policy = policy
        self.attempt = 1
        self.started_at = context.now
        self.what = what
        first._add_callback(self._on_attempt_done)

    def _on_attempt_done(self, attempt: Task[Any]) -> None:
        failure = attempt._exception
        if failure is None:
            self.complete(attempt._result)
            return
        if not self._retry_allowed(failure):
            self.fail(failure)
            return
        self.attempt += 1
        delay = self.policy.delay_before(self.attempt)
        timer = self.context.create_timer(self.context.now + delay)
        timer._add_callback(self._on_timer)

    def _retry_allowed(self, failure: BaseException) -> bool:
        if self.attempt >= self.policy.max_attempts:
            return False
        if not isinstance(failure, TaskFailedError):
            return False
        if not self.policy.should_retry(failure.details):
            return False
        if self.policy.timeout is not None:
            next_start = self.context.now + self.policy.delay_before(self.attempt + 1)
            if next_start - self.started_at > self.policy.timeout:
                return False
        return True

    def _on_timer(self, timer: Task[Any]) -> None:
        self.schedule()._add_callback(self._on_attempt_done)


_ACTION_FOR_EVENT = {
    "taskScheduled": "scheduleTask",
    "timerCreated": "createTimer",
    "subOrchestrationInstanceCreated": "createSubOrchestration",
    "eventSent": "sendEvent",
}


def _action_name(action: pb.OrchestratorAction) -> str | None:
    kind = action.WhichOneof("orchestratorActionType")
    if kind == "scheduleTask":
        return action.scheduleTask.name
    if kind == "createSubOrchestration":
        return action.createSubOrchestration.name
    if kind == "sendEvent":
        return action.sendEvent.name
    return None


class ReplaySafeLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger that stays silent while the orchestration replays history."""

    def __init__(self, logger: logging.Logger, context: RunContext) -> None:
        super().__init__(logger, {"instance_id": context.instance_id})
        self._context = context

    def isEnabledFor(self, level: int) -> bool:
        return not self._context.is_replaying and self.logger.isEnabledFor(level)

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return f"[{self._context.instance_id}] {msg}", kwargs
