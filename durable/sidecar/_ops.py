"""State changes shared by client requests and orchestrator completions.

Every function here runs inside one atomic database change and records what the
dispatcher must learn in an `Effects` object. The effects are applied only after
the change succeeded, so a change that fails and is rolled back leaves the
in-memory queues untouched.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Callable

from durable._proto import orchestrator_service_pb2 as pb

from . import _events as ev
from ._dispatch import Dispatcher
from ._workitems import ActivityEntry
from ._store import InstanceRow, Store

logger = logging.getLogger("durable.sidecar")

# `errorType` reported to a parent whose sub-orchestration was terminated.
TERMINATED_ERROR_TYPE = "TaskTerminated"
# `errorType` reported to a parent when its sub-orchestration could not be created.
CHILD_EXISTS_ERROR_TYPE = "OrchestrationAlreadyExists"


@dataclasses.dataclass
class Effects:
    """Changes made by one transaction that the dispatcher and the waiters must learn about."""

    now: int
    is_leased: Callable[[str], bool]
    touched: set[str] = dataclasses.field(default_factory=set)
    arrived: list[tuple[str, int]] = dataclasses.field(default_factory=list)
    changed: set[str] = dataclasses.field(default_factory=set)
    forgotten: list[str] = dataclasses.field(default_factory=list)
    activities: list[ActivityEntry] = dataclasses.field(default_factory=list)
    dropped_activities: set[str] = dataclasses.field(default_factory=set)
    messages: list[tuple[str, tuple[object, ...]]] = dataclasses.field(default_factory=list)

    def log(self, message: str, *args: object) -> None:
        self.messages.append((message, args))

    def apply(self, dispatcher: Dispatcher) -> None:
        """Update the dispatcher after the commit; the caller holds the dispatcher lock."""
        for instance_id in self.forgotten:
            dispatcher.forget(instance_id)
        for instance_id in self.dropped_activities:
            dispatcher.drop_queued_activities(instance_id)
        for entry in self.activities:
            dispatcher.queue_activity(entry)
        for instance_id, visible_at in self.arrived:
            if instance_id not in self.touched:
                dispatcher.event_added(instance_id, visible_at)
        for instance_id in self.touched:
            dispatcher.reschedule(instance_id)
        for instance_id in self.changed | set(self.forgotten):
            dispatcher.notify_instance(instance_id)
        for message, args in self.messages:
            logger.info(message, *args)


@dataclasses.dataclass
class ParentLink:
    """The parent of a sub-orchestration, as recorded in its `executionStarted` event."""

    instance_id: str
    execution_id: str
    task_id: int
    name: str
    version: str | None


def add_event(store: Store, effects: Effects, instance_id: str, event: pb.HistoryEvent, visible_at: int = 0) -> None:
    """Append an event to an instance's inbox, visible from `visible_at` (default: now)."""
    kind = ev.event_kind(event)
    visible_at = max(visible_at, effects.now)
    store.add_inbox(instance_id, kind, visible_at, event.SerializeToString())
    effects.arrived.append((instance_id, visible_at))


def create_instance(
    store: Store,
    effects: Effects,
    *,
    instance_id: str,
    name: str,
    version: str | None,
    input: str | None,
    tags: dict[str, str],
    scheduled_start: int | None = None,
    execution_id: str | None = None,
    parent: ParentLink | None = None,
    trace_context: pb.TraceContext | None = None,
) -> None:
    """Insert a PENDING instance whose inbox starts with its `executionStarted` event."""
    execution_id = execution_id or uuid.uuid4().hex
    now = effects.now
    store.insert_instance(
        InstanceRow(
            instance_id=instance_id,
            execution_id=execution_id,
            name=name,
            version=version,
            status=ev.PENDING,
            input=input,
            output=None,
            custom_status=None,
            failure_details=None,
            tags=tags,
            created_at=now,
            updated_at=now,
            completed_at=None,
            scheduled_start_at=scheduled_start,
            parent_instance_id=parent.instance_id if parent else None,
            parent_execution_id=parent.execution_id if parent else None,
            parent_task_id=parent.task_id if parent else None,
        )
    )
    event = ev.new_event(now)
    started = event.executionStarted
    started.name = name
    if version is not None:
        started.version.value = version
    if input is not None:
        started.input.value = input
    started.orchestrationInstance.instanceId = instance_id
    started.orchestrationInstance.executionId.value = execution_id
    if scheduled_start is not None:
        started.scheduledStartTimestamp.FromMicroseconds(scheduled_start)
    if parent is not None:
        started.parentInstance.taskScheduledId = parent.task_id
        started.parentInstance.name.value = parent.name
        if parent.version is not None:
            started.parentInstance.version.value = parent.version
        started.parentInstance.orchestrationInstance.instanceId = parent.instance_id
        started.parentInstance.orchestrationInstance.executionId.value = parent.execution_id
    if trace_context is not None:
        started.parentTraceContext.CopyFrom(trace_context)
    started.tags.update(tags)
    add_event(store, effects, instance_id, event, scheduled_start or 0)
    effects.changed.add(instance_id)
    effects.log("Instance %s of orchestration %r created", instance_id, name)


def replace_instance(store: Store, effects: Effects, instance_id: str) -> None:
    """Delete an existing instance so that a new one can take its id."""
    store.delete_instance(instance_id)
    effects.forgotten.append(instance_id)


def end_instance(
    store: Store,
    effects: Effects,
    row: InstanceRow,
    status: int,
    *,
    output: str | None,
    failure_details: pb.TaskFailureDetails | None,
    custom_status: str | None,
    next_history_seq: int,
    terminate_children: pb.ExecutionTerminatedEvent | None = None,
) -> None:
    """Make an instance terminal, notify its parent and, if asked, terminate its children."""
    now = effects.now
    store.update_instance(
        row.instance_id,
        status=status,
        output=output,
        failure_details=None if failure_details is None else failure_details.SerializeToString(),
        custom_status=custom_status,
        completed_at=now,
        updated_at=now,
        next_history_seq=next_history_seq,
    )
    # Events that arrive for a finished execution have no one to run them.
    store.clear_inbox(row.instance_id)
    store.delete_activities(row.instance_id)
    effects.dropped_activities.add(row.instance_id)
    effects.changed.add(row.instance_id)
    if failure_details is not None:
        effects.log(
            "Instance %s ended %s: %s: %s",
            row.instance_id,
            ev.status_name(status),
            failure_details.errorType,
            failure_details.errorMessage,
        )
    else:
        effects.log("Instance %s ended %s", row.instance_id, ev.status_name(status))

    if row.parent_instance_id is not None:
        _notify_parent(store, effects, row, status, output, failure_details)
    if terminate_children is not None:
        for child_id in store.child_ids(row.instance_id):
            child = store.get_instance(child_id)
            if child is not None:
                reason = terminate_children.input.value if terminate_children.HasField("input") else None
                terminate_instance(store, effects, child, reason, recurse=True)


def _notify_parent(
    store: Store,
    effects: Effects,
    row: InstanceRow,
    status: int,
    output: str | None,
    failure_details: pb.TaskFailureDetails | None,
) -> None:
    assert row.parent_instance_id is not None
    parent = store.dispatch_info(row.parent_instance_id)
    if parent is None or parent[0] in ev.TERMINAL_STATUSES:
        return
    if row.parent_execution_id is not None and parent[3] != row.parent_execution_id:
        return
    event = ev.new_event(effects.now)
    task_id = row.parent_task_id if row.parent_task_id is not None else -1
    if status == ev.COMPLETED:
        event.subOrchestrationInstanceCompleted.taskScheduledId = task_id
        if output is not None:
            event.subOrchestrationInstanceCompleted.result.value = output
    else:
        failed = event.subOrchestrationInstanceFailed
        failed.taskScheduledId = task_id
        if failure_details is not None:
            failed.failureDetails.CopyFrom(failure_details)
        else:
            # NOTE: a terminated child has no failure details of its own, but the
            # parent's worker builds its error from them, so the sidecar writes some.
            failed.failureDetails.errorType = TERMINATED_ERROR_TYPE
            message = f"sub-orchestration {row.instance_id!r} was terminated"
            failed.failureDetails.errorMessage = message + (f": {output}" if output else "")
    add_event(store, effects, row.parent_instance_id, event)


def terminate_instance(
    store: Store, effects: Effects, row: InstanceRow, reason: str | None, *, recurse: bool
) -> None:
    """Terminate a non-terminal instance.

    A PENDING instance that no worker has leased ends here at once. Any other
    instance gets an `executionTerminated` event, which its worker turns into
    the TERMINATED completion.
    """
    if row.status in ev.TERMINAL_STATUSES:
        return
    if row.status == ev.PENDING and not effects.is_leased(row.instance_id):
        end_instance(
            store,
            effects,
            row,
            ev.TERMINATED,
            output=reason,
            failure_details=None,
            custom_status=row.custom_status,
            next_history_seq=row.next_history_seq,
        )
        return
    event = ev.new_event(effects.now)
    event.executionTerminated.recurse = recurse
    if reason is not None:
        event.executionTerminated.input.value = reason
    add_event(store, effects, row.instance_id, event)


def effective_suspended(store: Store, row: InstanceRow) -> bool:
    """Return whether the instance is suspended once its queued suspend and resume events apply."""
    suspended = row.status == ev.SUSPENDED
    for kind in store.inbox_kinds(row.instance_id, (ev.EXECUTION_SUSPENDED, ev.EXECUTION_RESUMED)):
        suspended = kind == ev.EXECUTION_SUSPENDED
    return suspended
