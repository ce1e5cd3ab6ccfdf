"""The replay runtime: history in, actions out.

How it works, and the invariants it keeps:

* A run is a pure function of (orchestration class, instance id, past events,
  new events). The runtime creates the orchestration object, feeds it every
  past event with `is_replaying` true and then every new event with it false,
  and returns the actions that history has not confirmed yet, the custom status
  and, if the orchestration finished, the completion action.
* Steps are coroutines driven with `send()` by this module, never by asyncio.
  A step may only await durable tasks; when it awaits a task that is not done,
  the runtime parks the coroutine until a history event completes that task.
* Every API call that makes an action takes the next id (1, 2, 3, ...). When a
  confirming event (taskScheduled, timerCreated, subOrchestrationInstanceCreated,
  eventSent) is replayed, the action the code made with the same id must be of
  the same kind and name; otherwise the instance fails with NonDeterminismError.
* Completion events (taskCompleted, timerFired, ...) complete the task waiting
  under the id they carry. A completion with no waiting task is ignored, which
  tolerates duplicate deliveries.
* After `executionSuspended`, every event but `executionResumed` and
  `executionTerminated` is parked and applied in order at resume. A resume that
  arrives while not suspended is ignored.

The same `Replay` object can also be kept alive between work items and fed only
the events it has not seen; see `ReplayCache`.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta, timezone
from typing import Any, Coroutine

import attrs

from durable import _json
from durable._context import ContinueAsNewSignal, RunContext
from durable._machine import StateMachine
from durable._orchestration import Goto, Orchestration
from durable._proto import orchestrator_service_pb2 as pb
from durable._task import Task
from durable.errors import (
    FailureDetails,
    NonDeterminismError,
    OrchestrationNotRegisteredError,
    PayloadError,
    qualified_name,
)

__all__ = [
    "Replay",
    "ReplayCache",
    "ReplayResult",
    "replay",
    "run_work_item",
    "current_step",
    "STEP_ENVELOPE_KEY",
    "PAST_EVENTS_OFFSET",
]

logger = logging.getLogger(__name__)

# The `OrchestratorRequest.properties` key with which durable's sidecar marks
# `pastEvents` as only the tail of the history, after this many events. It is
# sent only to workers that advertise WORKER_CAPABILITY_HISTORY_STREAMING, with
# `requiresHistoryStreaming` set, so a worker without a matching cache fetches
# the whole history with StreamInstanceHistory.
PAST_EVENTS_OFFSET = "durable.pastEventsOffset"

# The input of an execution that a `goto(..., continue_as_new=True)` started at a
# step other than the start step: {"durable.step": "<step>", "value": <value>}.
STEP_ENVELOPE_KEY = "durable.step"

_CONFIRMING = {"taskScheduled", "timerCreated", "subOrchestrationInstanceCreated", "eventSent"}
_COMPLETING = {
    "taskCompleted": ("taskCompleted", "taskScheduledId"),
    "taskFailed": ("taskFailed", "taskScheduledId"),
    "subOrchestrationInstanceCompleted": ("subOrchestrationInstanceCompleted", "taskScheduledId"),
    "subOrchestrationInstanceFailed": ("subOrchestrationInstanceFailed", "taskScheduledId"),
    "timerFired": ("timerFired", "timerId"),
}


@attrs.frozen
class ReplayResult:
    """The unconfirmed actions, custom status, completion and current step of one run."""

    actions: list[pb.OrchestratorAction]
    custom_status: str | None
    completion: pb.CompleteOrchestrationAction | None
    current_step: str | None

    def to_response(self, instance_id: str, completion_token: str = "") -> pb.OrchestratorResponse:
        """Build the `OrchestratorResponse` a worker sends to the sidecar."""
        response = pb.OrchestratorResponse(
            instanceId=instance_id, actions=self.actions, completionToken=completion_token
        )
        if self.custom_status is not None:
            response.customStatus.value = self.custom_status
        return response


class Replay:
    """One orchestration instance being replayed; feed it events, then collect the result."""

    def __init__(
        self,
        orchestrations: Mapping[str, type[Orchestration[Any, Any]]],
        instance_id: str,
        *,
        max_timer_interval: timedelta | None = None,
    ) -> None:
        self.orchestrations = orchestrations
        self.context = RunContext(instance_id, max_timer_interval)
        self.machine: StateMachine | None = None
        self.orchestration: Orchestration[Any, Any] | None = None
        self.step_name: str | None = None
        self.coroutine: Coroutine[Any, Any, Any] | None = None
        self.awaiting: Task[Any] | None = None
        self.completion: pb.CompleteOrchestrationAction | None = None
        self.suspended = False
        self.parked: list[pb.HistoryEvent] = []
        self.events_seen = 0
        self.continue_keeps_events = False

    # ------------------------------------------------------------ feeding events

    def feed(self, events: Iterable[pb.HistoryEvent], *, replaying: bool) -> None:
        """Apply history events in order."""
        self.context.is_replaying = replaying
        for event in events:
            self.events_seen += 1
            if self.completion is not None:
                # NOTE: events that arrive in the same batch after a continue-as-new
                # are buffered so that the new execution receives them.
                if self.continue_keeps_events and event.HasField("eventRaised"):
                    raised = event.eventRaised
                    self.context.deliver_event(raised.name, raised.input.value if raised.HasField("input") else None)
                continue
            try:
                self._apply(event)
            except NonDeterminismError as exc:
                self._fail(exc)

    def _apply(self, event: pb.HistoryEvent) -> None:
        kind = event.WhichOneof("eventType")
        if kind == "orchestratorStarted":
            self.context.now = event.timestamp.ToDatetime(tzinfo=timezone.utc)
            return
        if self.suspended and kind not in ("executionResumed", "executionTerminated"):
            self.parked.append(event)
            return
        if kind in _COMPLETING:
            field, id_field = _COMPLETING[kind]
            task_id = getattr(getattr(event, field), id_field)
            finish = self.context.pending_tasks.pop(task_id, None)
            if finish is not None:
                finish(event)
            elif not self.context.is_replaying:
                logger.warning(
                    "instance %s: ignoring %s for id %d, which nothing waits for",
                    self.context.instance_id, kind, task_id,
                )
        elif kind in _CONFIRMING:
            self._confirm(event, kind)
        elif kind == "eventRaised":
            raised = event.eventRaised
            self.context.deliver_event(raised.name, raised.input.value if raised.HasField("input") else None)
        elif kind == "executionStarted":
            self._start(event.executionStarted)
        elif kind == "executionSuspended":
            self.suspended = True
        elif kind == "executionResumed":
            if self.suspended:
                self.suspended = False
                parked, self.parked = self.parked, []
                for held in parked:
                    if self.completion is None:
                        self._apply(held)
        elif kind == "executionTerminated":
            terminated = event.executionTerminated
            self._finish(
                pb.ORCHESTRATION_STATUS_TERMINATED,
                result=terminated.input.value if terminated.HasField("input") else None,
            )
        # Other kinds (orchestratorCompleted, executionCompleted, genericEvent, ...)
        # are informational and ignored.

    def _confirm(self, event: pb.HistoryEvent, kind: str) -> None:
        name: str | None = None
        if kind == "taskScheduled":
            name = event.taskScheduled.name
        elif kind == "subOrchestrationInstanceCreated":
            name = event.subOrchestrationInstanceCreated.name
        elif kind == "eventSent":
            name = event.eventSent.name
            action = self.context.pending_actions.get(event.eventId)
            target = event.eventSent.instanceId
            if action is not None and action.HasField("sendEvent") and action.sendEvent.instance.instanceId != target:
                raise NonDeterminismError(
                    f"action id {event.eventId}: history sent an event to {target!r} but the code "
                    f"sends it to {action.sendEvent.instance.instanceId!r} on replay"
                )
        self.context.confirm(event, kind, name)

    # ------------------------------------------------------------ starting and driving steps

    def _start(self, started: pb.ExecutionStartedEvent) -> None:
        cls = self.orchestrations.get(started.name)
        if cls is None:
            known = ", ".join(sorted(self.orchestrations)) or "none"
            error = OrchestrationNotRegisteredError(
                f"orchestration {started.name!r} is not registered on this worker "
                f"(registered: {known}); pass its class to Worker(orchestrations=[...])"
            )
            self._fail(error)
            return
        context = self.context
        context.name = started.name
        context.version = started.version.value if started.HasField("version") else None
        if started.HasField("parentInstance"):
            context.parent_instance_id = started.parentInstance.orchestrationInstance.instanceId
        self.machine = cls.__durable_machine__
        orchestration = cls()
        orchestration._durable_context = context
        self.orchestration = orchestration
        text = started.input.value if started.HasField("input") else None
        try:
            step, value = self._decode_start(self.machine, text)
        except PayloadError as exc:
            self._fail(exc)
            return
        self._enter_step(step, value)

    def _decode_start(self, machine: StateMachine, text: str | None) -> tuple[str, Any]:
        if not machine.is_single_step and text:
            try:
                plain = json.loads(text)
            except json.JSONDecodeError as exc:
                raise PayloadError(f"orchestration input is not valid JSON: {exc}") from exc
            if isinstance(plain, dict) and set(plain) == {STEP_ENVELOPE_KEY, "value"}:
                step = machine.step(str(plain[STEP_ENVELOPE_KEY]))
                return step.name, _json.from_plain(plain["value"], step.param_type)
        start = machine.steps[machine.start]
        return start.name, _json.decode(text, start.param_type)

    def _enter_step(self, name: str, value: Any) -> None:
        assert self.machine is not None and self.orchestration is not None
        self.step_name = name
        spec = self.machine.steps[name]
        try:
            self.coroutine = spec.function(self.orchestration, value)
        except Exception as exc:  # noqa: BLE001 - any failure of user code fails the instance
            self._fail(exc)
            return
        self._drive()

    def _drive(self) -> None:
        """Run the current step until it awaits an unfinished task, returns or fails."""
        throw: BaseException | None = None
        while self.completion is None and self.coroutine is not None:
            coroutine = self.coroutine
            try:
                yielded = coroutine.throw(throw) if throw is not None else coroutine.send(None)
            except StopIteration as stop:
                self.coroutine = None
                self._step_returned(stop.value)
                return
            except ContinueAsNewSignal as signal:
                self.coroutine = None
                self._continue_as_new(signal.args[0])
                return
            except Exception as exc:  # noqa: BLE001 - any failure of user code fails the instance
                self.coroutine = None
                self._fail(exc)
                return
            throw = None
            if not isinstance(yielded, Task):
                throw = TypeError(
                    f"step {self.step_name!r} awaited {_describe_awaited(coroutine, yielded)}, "
                    "which is not a durable task. "
                    "A step may only await tasks from call_activity, call_sub_orchestration, "
                    "create_timer, wait_for_event, when_all and when_any, because everything "
                    "else would run again differently on replay; do I/O or asyncio work in an activity"
                )
                continue
            if yielded.done:
                continue
            self.awaiting = yielded
            yielded._add_callback(self._on_awaited_done)
            return

    def _on_awaited_done(self, task: Task[Any]) -> None:
        if task is self.awaiting:
            self.awaiting = None
            self._drive()

    def _step_returned(self, value: Any) -> None:
        if isinstance(value, Goto):
            if value.continue_as_new:
                self._continue_as_new(value)
            else:
                self._enter_step(value.step, value.value)
            return
        assert self.machine is not None
        try:
            result = _json.encode(value, self.machine.output_type)
        except PayloadError as exc:
            self._fail(exc)
            return
        self._finish(pb.ORCHESTRATION_STATUS_COMPLETED, result=result)

    def _continue_as_new(self, goto: Goto) -> None:
        assert self.machine is not None
        step = self.machine.step(goto.step)
        try:
            if step.name == self.machine.start:
                new_input = _json.encode(goto.value, step.param_type)
            else:
                envelope = {STEP_ENVELOPE_KEY: step.name, "value": _json.to_plain(goto.value, step.param_type)}
                new_input = json.dumps(envelope, separators=(",", ":"), ensure_ascii=False)
        except PayloadError as exc:
            self._fail(exc)
            return
        self._finish(pb.ORCHESTRATION_STATUS_CONTINUED_AS_NEW, result=new_input)
        self.continue_keeps_events = goto.keep_events

    def _fail(self, exc: BaseException) -> None:
        details = FailureDetails.from_exception(exc)
        if isinstance(exc, NonDeterminismError):
            details = attrs.evolve(details, error_type=qualified_name(NonDeterminismError))
        if not self.context.is_replaying:
            logger.info("instance %s failed: %s", self.context.instance_id, details)
        self._finish(pb.ORCHESTRATION_STATUS_FAILED, failure=details)

    def _finish(
        self, status: int, *, result: str | None = None, failure: FailureDetails | None = None
    ) -> pb.CompleteOrchestrationAction:
        if self.coroutine is not None:
            coroutine, self.coroutine = self.coroutine, None
            coroutine.close()
        action = self.context.new_action()
        complete = action.completeOrchestration
        complete.orchestrationStatus = status  # type: ignore[assignment]
        if result is not None:
            complete.result.value = result
        if failure is not None:
            complete.failureDetails.CopyFrom(failure.to_proto())
        self.completion = complete
        return complete

    # ------------------------------------------------------------ results

    def result(self) -> ReplayResult:
        """Collect the unconfirmed actions (completion last), custom status and current step."""
        actions = list(self.context.pending_actions.values())
        completion = self.completion
        if completion is not None and self.continue_keeps_events:
            del completion.carryoverEvents[:]
            completion.carryoverEvents.extend(self.context.carryover_events())
        return ReplayResult(
            actions=actions,
            custom_status=self.context.custom_status,
            completion=self.completion,
            current_step=self.step_name,
        )


def _describe_awaited(coroutine: Coroutine[Any, Any, Any], yielded: object) -> str:
    # `cr_await` is the iterator the coroutine is suspended in. For an object
    # with an `__await__` generator method, that frame's `self` is the object.
    awaited = getattr(coroutine, "cr_await", None)
    frame = getattr(awaited, "gi_frame", None)
    if frame is not None and "self" in frame.f_locals:
        return repr(frame.f_locals["self"])
    if awaited is not None:
        return repr(awaited)
    return repr(yielded)


def replay(
    orchestrations: Mapping[str, type[Orchestration[Any, Any]]],
    instance_id: str,
    past_events: Sequence[pb.HistoryEvent],
    new_events: Sequence[pb.HistoryEvent],
    *,
    max_timer_interval: timedelta | None = None,
) -> ReplayResult:
    """Replay `past_events`, apply `new_events` and return what the orchestration did.

    Pure: it reads nothing but its arguments. Failures of user code, unknown
    orchestration names and non-determinism become a FAILED completion action;
    nothing raises for them.
    """
    run = Replay(orchestrations, instance_id, max_timer_interval=max_timer_interval)
    run.feed(past_events, replaying=True)
    run.feed(new_events, replaying=False)
    return run.result()


def run_work_item(
    orchestrations: Mapping[str, type[Orchestration[Any, Any]]],
    request: pb.OrchestratorRequest,
    *,
    max_timer_interval: timedelta | None = None,
    cache: ReplayCache | None = None,
) -> pb.OrchestratorResponse:
    """Run one orchestrator work item; the caller adds the completion token.

    With a `cache`, an instance that is still alive from its previous work item
    is fed only the events it has not seen; see `ReplayCache`.
    """
    if cache is not None:
        result = cache.run(orchestrations, request, max_timer_interval)
    else:
        result = replay(
            orchestrations,
            request.instanceId,
            request.pastEvents,
            request.newEvents,
            max_timer_interval=max_timer_interval,
        )
    return result.to_response(request.instanceId)


class ReplayCache:
    """Keeps running orchestrations between work items so history is not replayed every time.

    Every official SDK replays the whole history on each work item, so an
    orchestration with n steps costs O(n^2) in total. The cache keeps the live
    `Replay` of an instance after its work item. The next work item for that
    instance is applied incrementally only if its `pastEvents` start with
    exactly the events the cached replay has seen (checked on the first and the
    last of them); the events after that prefix, which are the confirmations
    the sidecar wrote for the previous run's actions, are fed as replayed
    events and then the new events as usual. Any mismatch, an eviction, a
    worker restart or a finished instance falls back to a full replay, so the
    results are the same with the cache on or off.

    The cache is bounded by instance count and by the total serialized size of
    the history it holds, evicting the least recently used instance first.
    """

    def __init__(self, max_instances: int = 5000, max_bytes: int = 256 * 1024 * 1024) -> None:
        if max_instances < 1:
            raise ValueError(f"max_instances must be at least 1, got {max_instances}")
        self.max_instances = max_instances
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, _CacheEntry] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def run(
        self,
        orchestrations: Mapping[str, type[Orchestration[Any, Any]]],
        request: pb.OrchestratorRequest,
        max_timer_interval: timedelta | None,
    ) -> ReplayResult:
        """Run a work item, incrementally when the cached instance matches its history."""
        instance_id = request.instanceId
        past = request.pastEvents
        with self._lock:
            entry = self._entries.pop(instance_id, None)
            if entry is not None:
                self._bytes -= entry.size
        run: Replay | None = None
        if entry is not None and entry.matches(past):
            run = entry.replay
            run.feed(past[entry.seen :], replaying=True)
            self.hits += 1
        else:
            if entry is not None:
                entry.close()
            run = Replay(orchestrations, instance_id, max_timer_interval=max_timer_interval)
            run.feed(past, replaying=True)
            self.misses += 1
        run.feed(request.newEvents, replaying=False)
        result = run.result()
        if result.completion is None:
            size = (entry.size if entry is not None and entry.replay is run else sum(e.ByteSize() for e in past))
            size += sum(e.ByteSize() for e in request.newEvents)
            first = past[0] if past else request.newEvents[0]
            if entry is not None and entry.replay is run:
                first = entry.first
            self._store(instance_id, _CacheEntry(run, len(past) + len(request.newEvents), first, request, size))
        return result

    def run_tail(
        self,
        orchestrations: Mapping[str, type[Orchestration[Any, Any]]],
        request: pb.OrchestratorRequest,
        offset: int,
    ) -> ReplayResult | None:
        """Run a work item whose `pastEvents` are only the history after its first `offset` events.

        Returns None, changing nothing, unless the cached instance has seen
        exactly those `offset` events; the caller then fetches the whole history.
        """
        instance_id = request.instanceId
        with self._lock:
            entry = self._entries.get(instance_id)
            if entry is None or entry.seen != offset or entry.replay.orchestrations is not orchestrations:
                return None
            del self._entries[instance_id]
            self._bytes -= entry.size
        run = entry.replay
        run.feed(request.pastEvents, replaying=True)
        run.feed(request.newEvents, replaying=False)
        self.hits += 1
        result = run.result()
        if result.completion is None:
            size = entry.size + sum(e.ByteSize() for e in request.pastEvents) + sum(e.ByteSize() for e in request.newEvents)
            seen = offset + len(request.pastEvents) + len(request.newEvents)
            self._store(instance_id, _CacheEntry(run, seen, entry.first, request, size))
        return result

    def waiting_tasks(self, instance_id: str) -> int:
        """Return how many tasks the cached instance waits on (0 if it is not cached)."""
        entry = self._entries.get(instance_id)
        return 0 if entry is None else len(entry.replay.context.pending_tasks)

    def evict(self, instance_id: str) -> None:
        """Forget one instance (the next work item replays it in full)."""
        with self._lock:
            entry = self._entries.pop(instance_id, None)
            if entry is not None:
                self._bytes -= entry.size
        if entry is not None:
            entry.close()

    def clear(self) -> None:
        """Forget every instance."""
        with self._lock:
            entries = list(self._entries.values())
            self._entries.clear()
            self._bytes = 0
        for entry in entries:
            entry.close()

    def _store(self, instance_id: str, entry: _CacheEntry) -> None:
        evicted: list[_CacheEntry] = []
        with self._lock:
            self._entries[instance_id] = entry
            self._bytes += entry.size
            while self._entries and (len(self._entries) > self.max_instances or self._bytes > self.max_bytes):
                _, old = self._entries.popitem(last=False)
                self._bytes -= old.size
                evicted.append(old)
        for old in evicted:
            old.close()


class _CacheEntry:
    __slots__ = ("replay", "seen", "first", "last", "size")

    def __init__(
        self, replay: Replay, seen: int, first: pb.HistoryEvent, request: pb.OrchestratorRequest, size: int
    ) -> None:
        self.replay = replay
        self.seen = seen
        self.first = first
        self.last = request.newEvents[-1] if request.newEvents else request.pastEvents[-1]
        self.size = size

    def matches(self, past: Sequence[pb.HistoryEvent]) -> bool:
        # NOTE: a redelivered work item (the previous completion was never
        # applied) has a shorter history and fails this check, as it must.
        return len(past) >= self.seen and past[0] == self.first and past[self.seen - 1] == self.last

    def close(self) -> None:
        coroutine = self.replay.coroutine
        if coroutine is not None:
            self.replay.coroutine = None
            coroutine.close()


def current_step(
    orchestration: type[Orchestration[Any, Any]],
    instance_id: str,
    history: Sequence[pb.HistoryEvent],
) -> str | None:
    """Replay a history without side effects and return the step the instance is in (or ended in)."""
    machine = orchestration.__durable_machine__
    run = Replay({machine.name: orchestration}, instance_id)
    run.feed(history, replaying=True)
    return run.step_name
