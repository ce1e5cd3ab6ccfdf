"""Applying an orchestrator's response: history, actions and the instance's new status."""

from __future__ import annotations

import uuid

from google.protobuf.message import Message

from durable._proto import orchestrator_service_pb2 as pb

from . import _events as ev
from . import _ops as ops
from ._workitems import ActivityEntry, OrchestrationLease
from ._errors import InvalidArgument, Unimplemented
from ._store import InstanceRow, Store

__all__ = ["validate_response", "apply_response"]

_SUPPORTED_ACTIONS = frozenset(
    {
        "scheduleTask",
        "createSubOrchestration",
        "createTimer",
        "sendEvent",
        "completeOrchestration",
        "terminateOrchestration",
    }
)
_COMPLETION_STATUSES = frozenset({ev.COMPLETED, ev.FAILED, ev.TERMINATED, ev.CONTINUED_AS_NEW})


def validate_response(response: pb.OrchestratorResponse) -> None:
    """Raise before anything is written if the response cannot be applied as a whole."""
    instance_id = response.instanceId
    if response.isPartial:
        raise Unimplemented(
            "chunked orchestrator responses (isPartial = true) are not supported; "
            "send all actions in one CompleteOrchestratorTask call",
            instance_id,
        )
    for action in response.actions:
        kind = action.WhichOneof("orchestratorActionType")
        if kind is None:
            raise InvalidArgument(f"action {action.id} of instance {instance_id!r} has no action type set", instance_id)
        if kind not in _SUPPORTED_ACTIONS:
            feature = "durable entities" if kind == "sendEntityMessage" else "rewinding orchestrations"
            raise Unimplemented(
                f"action {action.id} of instance {instance_id!r} is {kind!r}, but this sidecar does not support "
                f"{feature}",
                instance_id,
            )
        if kind == "completeOrchestration":
            status = action.completeOrchestration.orchestrationStatus
            if status not in _COMPLETION_STATUSES:
                raise InvalidArgument(
                    f"completeOrchestration action of instance {instance_id!r} has status "
                    f"{ev.status_name(status)}; expected COMPLETED, FAILED, TERMINATED or CONTINUED_AS_NEW",
                    instance_id,
                )
        if kind == "createTimer" and not action.createTimer.HasField("fireAt"):
            raise InvalidArgument(f"createTimer action {action.id} of instance {instance_id!r} has no fireAt", instance_id)
        if kind == "scheduleTask" and not action.scheduleTask.name:
            raise InvalidArgument(f"scheduleTask action {action.id} of instance {instance_id!r} has no name", instance_id)
        if kind == "createSubOrchestration" and not action.createSubOrchestration.name:
            raise InvalidArgument(
                f"createSubOrchestration action {action.id} of instance {instance_id!r} has no name", instance_id
            )


def apply_response(
    store: Store, effects: ops.Effects, row: InstanceRow, lease: OrchestrationLease, response: pb.OrchestratorResponse
) -> None:
    """Commit one orchestrator run; the caller wraps this in a transaction."""
    now = effects.now
    instance_id = row.instance_id
    history: list[bytes] = [lease.started_event] + [event for _, _, event in lease.events]

    status = ev.RUNNING if row.status == ev.PENDING else row.status
    for _, kind, _ in lease.events:
        if kind == ev.EXECUTION_SUSPENDED:
            status = ev.SUSPENDED
        elif kind == ev.EXECUTION_RESUMED:
            status = ev.RUNNING

    completion: pb.OrchestratorAction | None = None
    for action in response.actions:
        if action.WhichOneof("orchestratorActionType") == "completeOrchestration":
            completion = action
    finishing = completion is not None and completion.completeOrchestration.orchestrationStatus in ev.TERMINAL_STATUSES

    # The completion action is applied last, whatever its position in the list.
    for action in response.actions:
        action_kind = action.WhichOneof("orchestratorActionType")
        if action_kind == "scheduleTask":
            history.append(_schedule_task(store, effects, row, action, enqueue=not finishing))
        elif action_kind == "createTimer":
            history.append(_create_timer(store, effects, row, action, enqueue=not finishing))
        elif action_kind == "createSubOrchestration":
            history.append(_create_sub_orchestration(store, effects, row, action))
        elif action_kind == "sendEvent":
            history.append(_send_event(store, effects, action))
        elif action_kind == "terminateOrchestration":
            target = store.get_instance(action.terminateOrchestration.instanceId)
            if target is not None:
                reason = action.terminateOrchestration.reason
                ops.terminate_instance(
                    store,
                    effects,
                    target,
                    reason.value if action.terminateOrchestration.HasField("reason") else None,
                    recurse=action.terminateOrchestration.recurse,
                )

    custom_status = response.customStatus.value if response.HasField("customStatus") else None
    next_seq = store.append_history(instance_id, row.next_history_seq, history)

    if completion is not None and completion.completeOrchestration.orchestrationStatus == ev.CONTINUED_AS_NEW:
        _continue_as_new(store, effects, row, lease, completion.completeOrchestration, custom_status)
        return
    if completion is not None:
        _complete(store, effects, row, lease, completion.completeOrchestration, custom_status, next_seq)
        return

    store.update_instance(
        instance_id, status=status, custom_status=custom_status, updated_at=now, next_history_seq=next_seq
    )
    store.delete_inbox_rows(instance_id, [seq for seq, _, _ in lease.events])
    effects.touched.add(instance_id)
    if status != row.status:
        effects.changed.add(instance_id)
        if row.status == ev.PENDING:
            effects.log("Instance %s started", instance_id)


# Optional message fields that an action passes on to its history event and request.
_TASK_FIELDS = ("version", "input", "parentTraceContext")


def _copy_set_fields(source: Message, target: Message, names: tuple[str, ...]) -> None:
    for name in names:
        if source.HasField(name):
            getattr(target, name).CopyFrom(getattr(source, name))


def _schedule_task(
    store: Store, effects: ops.Effects, row: InstanceRow, action: pb.OrchestratorAction, *, enqueue: bool
) -> bytes:
    task = action.scheduleTask
    event = ev.new_event(effects.now, action.id)
    scheduled = event.taskScheduled
    scheduled.name = task.name
    _copy_set_fields(task, scheduled, _TASK_FIELDS)
    scheduled.tags.update(task.tags)

    if enqueue:
        request = pb.ActivityRequest(name=task.name, taskId=action.id)
        _copy_set_fields(task, request, _TASK_FIELDS)
        request.orchestrationInstance.instanceId = row.instance_id
        request.orchestrationInstance.executionId.value = row.execution_id
        request.tags.update(task.tags)
        payload = request.SerializeToString()
        version = task.version.value if task.HasField("version") else None
        seq = store.add_activity(row.instance_id, row.execution_id, action.id, task.name, version, payload)
        effects.activities.append(
            ActivityEntry(seq, row.instance_id, row.execution_id, action.id, task.name, version, payload)
        )
    return event.SerializeToString()


def _create_timer(
    store: Store, effects: ops.Effects, row: InstanceRow, action: pb.OrchestratorAction, *, enqueue: bool
) -> bytes:
    fire_at = action.createTimer.fireAt
    event = ev.new_event(effects.now, action.id)
    event.timerCreated.fireAt.CopyFrom(fire_at)
    if enqueue:
        fired = ev.new_event(effects.now)
        fired.timerFired.timerId = action.id
        fired.timerFired.fireAt.CopyFrom(fire_at)
        # NOTE: the event is stamped when the timer fires, not now: the timer
        # thread makes the row visible at `fireAt` and dispatch reads it as it is.
        fired.timestamp.CopyFrom(fire_at)
        ops.add_event(store, effects, row.instance_id, fired, fire_at.ToMicroseconds())
    return event.SerializeToString()


def _create_sub_orchestration(
    store: Store, effects: ops.Effects, row: InstanceRow, action: pb.OrchestratorAction
) -> bytes:
    create = action.createSubOrchestration
    child_id = create.instanceId or f"{row.instance_id}:{action.id:04x}"
    event = ev.new_event(effects.now, action.id)
    created = event.subOrchestrationInstanceCreated
    created.instanceId = child_id
    created.name = create.name
    _copy_set_fields(create, created, _TASK_FIELDS)
    created.tags.update(create.tags)

    existing = store.dispatch_info(child_id)
    if existing is not None and existing[0] not in ev.TERMINAL_STATUSES:
        failed = ev.new_event(effects.now)
        failed.subOrchestrationInstanceFailed.taskScheduledId = action.id
        details = failed.subOrchestrationInstanceFailed.failureDetails
        details.errorType = ops.CHILD_EXISTS_ERROR_TYPE
        details.errorMessage = (
            f"cannot create sub-orchestration {child_id!r}: an instance with that id already exists "
            f"and is {ev.status_name(existing[0])}"
        )
        details.isNonRetriable = True
        ops.add_event(store, effects, row.instance_id, failed)
        effects.log("Instance %s: %s", row.instance_id, details.errorMessage)
        return event.SerializeToString()

    # A terminal child with the same id is replaced, so that retries can reuse the id.
    if existing is not None:
        ops.replace_instance(store, effects, child_id)
    ops.create_instance(
        store,
        effects,
        instance_id=child_id,
        name=create.name,
        version=create.version.value if create.HasField("version") else None,
        input=create.input.value if create.HasField("input") else None,
        tags=dict(create.tags),
        parent=ops.ParentLink(row.instance_id, row.execution_id, action.id, row.name, row.version),
        trace_context=create.parentTraceContext if create.HasField("parentTraceContext") else None,
    )
    return event.SerializeToString()


def _send_event(store: Store, effects: ops.Effects, action: pb.OrchestratorAction) -> bytes:
    send = action.sendEvent
    target_id = send.instance.instanceId
    event = ev.new_event(effects.now, action.id)
    event.eventSent.instanceId = target_id
    event.eventSent.name = send.name
    if send.HasField("data"):
        event.eventSent.input.CopyFrom(send.data)

    # The target receives `eventRaised`, the event that workers match to waiters.
    target = store.dispatch_info(target_id)
    if target is not None and target[0] not in ev.TERMINAL_STATUSES:
        raised = ev.new_event(effects.now)
        raised.eventRaised.name = send.name
        if send.HasField("data"):
            raised.eventRaised.input.CopyFrom(send.data)
        ops.add_event(store, effects, target_id, raised)
    return event.SerializeToString()


def _complete(
    store: Store,
    effects: ops.Effects,
    row: InstanceRow,
    lease: OrchestrationLease,
    complete: pb.CompleteOrchestrationAction,
    custom_status: str | None,
    next_seq: int,
) -> None:
    status = complete.orchestrationStatus
    event = ev.new_event(effects.now)
    completed = event.executionCompleted
    completed.orchestrationStatus = status
    if complete.HasField("result"):
        completed.result.CopyFrom(complete.result)
    failure = complete.failureDetails if complete.HasField("failureDetails") else None
    if failure is not None:
        completed.failureDetails.CopyFrom(failure)
    next_seq = store.append_history(row.instance_id, next_seq, [event.SerializeToString()])

    terminate_children: pb.ExecutionTerminatedEvent | None = None
    if status == ev.TERMINATED:
        terminate_children = _recursive_termination(store, row, lease)
    ops.end_instance(
        store,
        effects,
        row,
        status,
        output=complete.result.value if complete.HasField("result") else None,
        failure_details=failure,
        custom_status=custom_status,
        next_history_seq=next_seq,
        terminate_children=terminate_children,
    )


def _recursive_termination(store: Store, row: InstanceRow, lease: OrchestrationLease) -> pb.ExecutionTerminatedEvent | None:
    """Return the `executionTerminated` event that asked for recursion, if one was delivered."""
    for _, kind, data in lease.events:
        if kind == ev.EXECUTION_TERMINATED:
            terminated = pb.HistoryEvent.FromString(data).executionTerminated
            if terminated.recurse:
                return terminated
    return None


def _continue_as_new(
    store: Store,
    effects: ops.Effects,
    row: InstanceRow,
    lease: OrchestrationLease,
    complete: pb.CompleteOrchestrationAction,
    custom_status: str | None,
) -> None:
    now = effects.now
    instance_id = row.instance_id
    execution_id = uuid.uuid4().hex
    new_input = complete.result.value if complete.HasField("result") else None
    version = complete.newVersion.value if complete.HasField("newVersion") else row.version

    # The new execution keeps the parent, trace context and tags of the first one.
    previous = pb.ExecutionStartedEvent()
    for data in store.first_history_events(instance_id, 4):
        event = pb.HistoryEvent.FromString(data)
        if event.HasField("executionStarted"):
            previous = event.executionStarted
            break

    started = ev.new_event(now)
    started.executionStarted.CopyFrom(previous)
    started.executionStarted.name = row.name
    started.executionStarted.ClearField("version")
    if version is not None:
        started.executionStarted.version.value = version
    started.executionStarted.ClearField("input")
    if new_input is not None:
        started.executionStarted.input.value = new_input
    started.executionStarted.ClearField("scheduledStartTimestamp")
    started.executionStarted.orchestrationInstance.instanceId = instance_id
    started.executionStarted.orchestrationInstance.executionId.value = execution_id

    # NOTE: the new inbox must start with `executionStarted`, then the carried-over
    # events, then whatever arrived during the run. Results, timers and children of
    # the old execution mean nothing to the new one and are dropped.
    arrived = store.take_inbox(instance_id, exclude=[seq for seq, _, _ in lease.events])
    store.clear_history(instance_id)
    ops.add_event(store, effects, instance_id, started)
    for carried in complete.carryoverEvents:
        ops.add_event(store, effects, instance_id, carried)
    for kind, visible_at, data in arrived:
        if kind not in ev.EXECUTION_BOUND_KINDS:
            store.add_inbox(instance_id, kind, visible_at, data)
    store.delete_activities(instance_id)
    effects.dropped_activities.add(instance_id)

    store.update_instance(
        instance_id,
        execution_id=execution_id,
        version=version,
        input=new_input,
        output=None,
        failure_details=None,
        custom_status=custom_status,
        status=ev.RUNNING,
        updated_at=now,
        next_history_seq=0,
    )
    effects.changed.add(instance_id)
    effects.log("Instance %s continued as new with execution %s", instance_id, execution_id)
