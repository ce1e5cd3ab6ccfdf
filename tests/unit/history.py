"""Hand-built protocol histories for unit tests of the replay runtime.

`events` has one builder per history event kind. `Simulation` plays the
sidecar's part without a network: it keeps the committed history, confirms the
actions each run returns the way a sidecar does (eventId = action id), and
lets a test append completions before the next run.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

from durable._proto import orchestrator_service_pb2 as pb
from durable._runtime import ReplayCache, ReplayResult, replay

START = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)


def _stamp(event: pb.HistoryEvent, when: datetime | None) -> pb.HistoryEvent:
    if when is not None:
        event.timestamp.FromDatetime(when.astimezone(timezone.utc).replace(tzinfo=None))
    return event


def orchestrator_started(when: datetime = START) -> pb.HistoryEvent:
    event = pb.HistoryEvent(eventId=-1)
    event.orchestratorStarted.SetInParent()
    return _stamp(event, when)


def execution_started(name: str, input: str | None, instance_id: str = "inst", parent: str | None = None) -> pb.HistoryEvent:
    event = pb.HistoryEvent(eventId=-1)
    started = event.executionStarted
    started.name = name
    started.orchestrationInstance.instanceId = instance_id
    if input is not None:
        started.input.value = input
    if parent is not None:
        started.parentInstance.orchestrationInstance.instanceId = parent
        started.parentInstance.taskScheduledId = 1
    return event


def task_scheduled(action_id: int, name: str) -> pb.HistoryEvent:
    event = pb.HistoryEvent(eventId=action_id)
    event.taskScheduled.name = name
    return event


def task_completed(action_id: int, result: str | None) -> pb.HistoryEvent:
    event = pb.HistoryEvent(eventId=-1)
    event.taskCompleted.taskScheduledId = action_id
    if result is not None:
        event.taskCompleted.result.value = result
    return event


def failure(error_type: str = "builtins.ValueError", message: str = "boom", inner: pb.TaskFailureDetails | None = None) -> pb.TaskFailureDetails:
    details = pb.TaskFailureDetails(errorType=error_type, errorMessage=message)
    details.stackTrace.value = "Traceback: somewhere"
    if inner is not None:
        details.innerFailure.CopyFrom(inner)
    return details


def task_failed(action_id: int, details: pb.TaskFailureDetails | None = None) -> pb.HistoryEvent:
    event = pb.HistoryEvent(eventId=-1)
    event.taskFailed.taskScheduledId = action_id
    event.taskFailed.failureDetails.CopyFrom(details or failure())
    return event


def timer_created(action_id: int, fire_at: datetime) -> pb.HistoryEvent:
    event = pb.HistoryEvent(eventId=action_id)
    event.timerCreated.fireAt.FromDatetime(fire_at.astimezone(timezone.utc).replace(tzinfo=None))
    return event


def timer_fired(action_id: int, fire_at: datetime) -> pb.HistoryEvent:
    event = pb.HistoryEvent(eventId=-1)
    event.timerFired.timerId = action_id
    event.timerFired.fireAt.FromDatetime(fire_at.astimezone(timezone.utc).replace(tzinfo=None))
    return event


def event_raised(name: str, payload: Any = None, *, raw: str | None = None) -> pb.HistoryEvent:
    event = pb.HistoryEvent(eventId=-1)
    event.eventRaised.name = name
    text = raw
    if text is None and payload is not None:
        text = json.dumps(payload)
    if text is not None:
        event.eventRaised.input.value = text
    return event


def sub_created(action_id: int, name: str, instance_id: str) -> pb.HistoryEvent:
    event = pb.HistoryEvent(eventId=action_id)
    event.subOrchestrationInstanceCreated.name = name
    event.subOrchestrationInstanceCreated.instanceId = instance_id
    return event


def sub_completed(action_id: int, result: str | None) -> pb.HistoryEvent:
    event = pb.HistoryEvent(eventId=-1)
    event.subOrchestrationInstanceCompleted.taskScheduledId = action_id
    if result is not None:
        event.subOrchestrationInstanceCompleted.result.value = result
    return event


def sub_failed(action_id: int, details: pb.TaskFailureDetails) -> pb.HistoryEvent:
    event = pb.HistoryEvent(eventId=-1)
    event.subOrchestrationInstanceFailed.taskScheduledId = action_id
    event.subOrchestrationInstanceFailed.failureDetails.CopyFrom(details)
    return event


def event_sent(action_id: int, target: str, name: str) -> pb.HistoryEvent:
    event = pb.HistoryEvent(eventId=action_id)
    event.eventSent.instanceId = target
    event.eventSent.name = name
    return event


def suspended() -> pb.HistoryEvent:
    event = pb.HistoryEvent(eventId=-1)
    event.executionSuspended.SetInParent()
    return event


def resumed() -> pb.HistoryEvent:
    event = pb.HistoryEvent(eventId=-1)
    event.executionResumed.SetInParent()
    return event


def terminated(output: str | None = None) -> pb.HistoryEvent:
    event = pb.HistoryEvent(eventId=-1)
    event.executionTerminated.SetInParent()
    if output is not None:
        event.executionTerminated.input.value = output
    return event


def confirmation(action: pb.OrchestratorAction) -> pb.HistoryEvent | None:
    """The history event a sidecar writes for an action (None for completions)."""
    kind = action.WhichOneof("orchestratorActionType")
    if kind == "scheduleTask":
        return task_scheduled(action.id, action.scheduleTask.name)
    if kind == "createTimer":
        return timer_created(action.id, action.createTimer.fireAt.ToDatetime(tzinfo=timezone.utc))
    if kind == "createSubOrchestration":
        create = action.createSubOrchestration
        return sub_created(action.id, create.name, create.instanceId)
    if kind == "sendEvent":
        return event_sent(action.id, action.sendEvent.instance.instanceId, action.sendEvent.name)
    return None


class Simulation:
    """Plays the sidecar for one instance: history, confirmations and runs."""

    def __init__(
        self,
        orchestration: type,
        input: Any = None,
        *,
        raw_input: str | None = None,
        instance_id: str = "inst",
        cache: ReplayCache | None = None,
        **replay_options: Any,
    ) -> None:
        self.cache = cache
        self.orchestrations = {orchestration.__durable_name__: orchestration}
        self.instance_id = instance_id
        self.history: list[pb.HistoryEvent] = []
        self.now = START
        text = raw_input
        if text is None and input is not None:
            text = json.dumps(input)
        self.inbox: list[pb.HistoryEvent] = [execution_started(orchestration.__durable_name__, text, instance_id)]
        self.replay_options = replay_options
        self.runs: list[ReplayResult] = []

    def add(self, *events: pb.HistoryEvent) -> Simulation:
        self.inbox.extend(events)
        return self

    def run(self, advance: timedelta = timedelta(seconds=1)) -> ReplayResult:
        """One work item: replay the history plus the inbox, then commit like a sidecar."""
        new_events = [orchestrator_started(self.now), *self.inbox]
        self.inbox = []
        if self.cache is not None:
            request = pb.OrchestratorRequest(instanceId=self.instance_id, pastEvents=self.history, newEvents=new_events)
            result = self.cache.run(self.orchestrations, request, self.replay_options.get("max_timer_interval"))
        else:
            result = replay(self.orchestrations, self.instance_id, self.history, new_events, **self.replay_options)
        self.history.extend(new_events)
        for action in result.actions:
            confirm = confirmation(action)
            if confirm is not None:
                self.history.append(confirm)
        self.now += advance
        self.runs.append(result)
        return result

    def scheduled(self, result: ReplayResult | None = None) -> list[pb.OrchestratorAction]:
        """The actions of a run other than the completion."""
        result = result or self.runs[-1]
        return [a for a in result.actions if not a.HasField("completeOrchestration")]


def kinds(result: ReplayResult) -> list[str]:
    return [str(a.WhichOneof("orchestratorActionType")) for a in result.actions]


def output(result: ReplayResult) -> Any:
    assert result.completion is not None, f"not completed; actions: {kinds(result)}"
    assert result.completion.orchestrationStatus == pb.ORCHESTRATION_STATUS_COMPLETED, (
        f"status {pb.OrchestrationStatus.Name(result.completion.orchestrationStatus)}: "
        f"{result.completion.failureDetails}"
    )
    return json.loads(result.completion.result.value) if result.completion.HasField("result") else None


def failed(result: ReplayResult) -> pb.TaskFailureDetails:
    assert result.completion is not None, f"not completed; actions: {kinds(result)}"
    assert result.completion.orchestrationStatus == pb.ORCHESTRATION_STATUS_FAILED, (
        f"expected FAILED, got {pb.OrchestrationStatus.Name(result.completion.orchestrationStatus)}"
    )
    return result.completion.failureDetails
