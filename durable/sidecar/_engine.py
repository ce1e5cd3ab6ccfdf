"""The sidecar's operations: every RPC's behaviour, independent of gRPC."""

from __future__ import annotations

import functools
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from durable._proto import orchestrator_service_pb2 as pb

from . import _events as ev
from . import _ops as ops
from ._completion import apply_response, validate_response
from ._dispatch import Dispatcher
from ._errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from ._store import InstanceRow, Store

__all__ = ["Engine"]

logger = logging.getLogger("durable.sidecar")

_HISTORY_CHUNK_EVENTS = 100
_MAX_BATCH_PURGE = 500
_DEFAULT_ID_PAGE = 100


def _status_list(statuses: Iterable[int]) -> str:
    return ", ".join(ev.status_name(status) for status in statuses)


def _cursor(token: str, what: str) -> tuple[int, str]:
    """Parse a keyset cursor of the form `<microseconds>|<instance id>`."""
    micros, separator, instance_id = token.partition("|")
    if not separator or not micros.isdigit():
        raise InvalidArgument(f"invalid {what} {token!r}: pass the value returned with the previous page")
    return int(micros), instance_id


def _require_id(instance_id: str) -> None:
    if not instance_id:
        raise InvalidArgument("instanceId is required and must not be empty")


def _state(row: InstanceRow, with_payloads: bool) -> pb.OrchestrationState:
    state = pb.OrchestrationState(
        instanceId=row.instance_id, name=row.name, orchestrationStatus=row.status  # type: ignore[arg-type]
    )
    if row.version is not None:
        state.version.value = row.version
    if row.scheduled_start_at is not None:
        state.scheduledStartTimestamp.FromMicroseconds(row.scheduled_start_at)
    state.createdTimestamp.FromMicroseconds(row.created_at)
    state.lastUpdatedTimestamp.FromMicroseconds(row.updated_at)
    if with_payloads and row.input is not None:
        state.input.value = row.input
    if with_payloads and row.output is not None:
        state.output.value = row.output
    if row.custom_status is not None:
        state.customStatus.value = row.custom_status
    if row.failure_details is not None:
        state.failureDetails.ParseFromString(row.failure_details)
    state.executionId.value = row.execution_id
    if row.completed_at is not None:
        state.completedTimestamp.FromMicroseconds(row.completed_at)
    if row.parent_instance_id is not None:
        state.parentInstanceId.value = row.parent_instance_id
    state.tags.update(row.tags)
    return state


F = TypeVar("F", bound=Callable[..., Any])


def _durable(method: F) -> F:
    """Make a mutating operation return only after its changes are committed."""

    @functools.wraps(method)
    def run(self: Engine, *args: Any, **kwargs: Any) -> Any:
        self._writers += 1
        try:
            result = method(self, *args, **kwargs)
        except BaseException:
            self._local.group = 0
            raise
        finally:
            self._writers -= 1
        self._await_commit()
        return result

    return run  # type: ignore[return-value]


class Engine:
    """Applies client and worker requests to the store and informs the dispatcher."""

    def __init__(self, store: Store, dispatcher: Dispatcher) -> None:
        self.store = store
        self.dispatcher = dispatcher
        self.lock = dispatcher.lock
        self._local = threading.local()
        self._committing = False
        self._commit_done = threading.Condition(self.lock)
        self._failed_groups: set[int] = set()
        self._writers = 0

    def _effects(self) -> ops.Effects:
        return ops.Effects(now=ev.now_us(), is_leased=self.dispatcher.is_leased)

    def _existing(self, instance_id: str) -> InstanceRow:
        _require_id(instance_id)
        row = self.store.get_instance(instance_id)
        if row is None:
            raise NotFound(f"orchestration instance {instance_id!r} not found", instance_id)
        return row

    def _existing_terminal(self, instance_id: str, action: str) -> InstanceRow:
        row = self._existing(instance_id)
        if row.status not in ev.TERMINAL_STATUSES:
            raise FailedPrecondition(
                f"orchestration instance {instance_id!r} is {ev.status_name(row.status)}; only completed, "
                f"failed or terminated instances can be {action}",
                instance_id,
            )
        return row

    def _commit(self, effects: ops.Effects, change: Callable[[], None]) -> None:
        # NOTE: the change joins the open group transaction and its effects reach
        # the dispatcher at once, but the RPC returns only after `_await_commit`
        # has made the group durable. Concurrent requests thus share one COMMIT.
        group = self.store.run_in_group(change)
        self._local.group = max(group, getattr(self._local, "group", 0))
        effects.apply(self.dispatcher)

    def _await_commit(self) -> None:
        group: int = getattr(self._local, "group", 0)
        self._local.group = 0
        while group:
            with self.lock:
                if group in self._failed_groups:
                    raise RuntimeError(f"the database commit of group {group} failed; see the sidecar log")
                if self.store.committed_group >= group:
                    return
                if self._committing:
                    self._commit_done.wait()
                    continue
                self._committing = True
            # Give request threads that are about to write a moment to join this commit.
            # The counter is read without the lock: a stale value only costs a yield.
            if self._writers > 0:
                time.sleep(0)
            with self.lock:
                try:
                    self.store.commit_group()
                except Exception:
                    logger.exception("Committing to %s failed; reloading the dispatch queues", self.store.path)
                    self._failed_groups.add(group)
                    self.dispatcher.reload()
                finally:
                    self._committing = False
                    self._commit_done.notify_all()

    # ------------------------------------------------------------------ starting

    @_durable
    def start_instance(self, request: pb.CreateInstanceRequest) -> str:
        """Create an instance, honouring the id reuse policy; return its id."""
        if not request.name:
            raise InvalidArgument("name is required: the registered name of the orchestrator to run")
        instance_id = request.instanceId or uuid.uuid4().hex
        scheduled = (
            request.scheduledStartTimestamp.ToMicroseconds() if request.HasField("scheduledStartTimestamp") else None
        )
        replaceable = set(request.orchestrationIdReusePolicy.replaceableStatus)
        with self.lock:
            effects = self._effects()
            existing = self.store.get_instance(instance_id)
            if existing is not None and existing.status not in replaceable:
                hint = (
                    f"its status is not among the replaceable statuses ({_status_list(sorted(replaceable))})"
                    if replaceable
                    else "pass an id reuse policy that lists its status to replace it"
                )
                raise AlreadyExists(
                    f"orchestration instance {instance_id!r} already exists with status "
                    f"{ev.status_name(existing.status)}; {hint}",
                    instance_id,
                )

            def change() -> None:
                if existing is not None:
                    ops.replace_instance(self.store, effects, instance_id)
                    effects.log("Instance %s replaced (it was %s)", instance_id, ev.status_name(existing.status))
                ops.create_instance(
                    self.store,
                    effects,
                    instance_id=instance_id,
                    name=request.name,
                    version=request.version.value if request.HasField("version") else None,
                    input=request.input.value if request.HasField("input") else None,
                    tags=dict(request.tags),
                    scheduled_start=scheduled,
                    execution_id=request.executionId.value if request.HasField("executionId") else None,
                    trace_context=request.parentTraceContext if request.HasField("parentTraceContext") else None,
                )

            self._commit(effects, change)
        return instance_id

    @_durable
    def restart_instance(self, instance_id: str, new_id: bool) -> str:
        """Run a terminal instance again with its name, input, version and tags; return the id used."""
        with self.lock:
            row = self._existing_terminal(instance_id, "restarted")
            target = uuid.uuid4().hex if new_id else instance_id
            effects = self._effects()

            def change() -> None:
                if not new_id:
                    ops.replace_instance(self.store, effects, instance_id)
                ops.create_instance(
                    self.store,
                    effects,
                    instance_id=target,
                    name=row.name,
                    version=row.version,
                    input=row.input,
                    tags=row.tags,
                )

            self._commit(effects, change)
            return target

    # ------------------------------------------------------------------ reading

    def get_instance(self, instance_id: str, with_payloads: bool) -> pb.GetInstanceResponse:
        _require_id(instance_id)
        with self.lock:
            row = self.store.get_instance(instance_id)
        if row is None:
            return pb.GetInstanceResponse(exists=False)
        return pb.GetInstanceResponse(exists=True, orchestrationState=_state(row, with_payloads))

    def wait_for_instance(
        self,
        instance_id: str,
        with_payloads: bool,
        done: Callable[[int], bool],
        timeout: float | None,
        cancelled: Callable[[], bool],
    ) -> pb.GetInstanceResponse | None:
        """Wait until `done(status)` is true or the instance is gone; return None on timeout."""
        _require_id(instance_id)

        def check() -> pb.GetInstanceResponse | None:
            row = self.store.get_instance(instance_id)
            if row is None:
                return pb.GetInstanceResponse(exists=False)
            if done(row.status):
                return pb.GetInstanceResponse(exists=True, orchestrationState=_state(row, with_payloads))
            return None

        return self.dispatcher.wait_for_instance(instance_id, check, timeout, cancelled)

    def history_chunks(self, instance_id: str, execution_id: str | None) -> list[bytes]:
        """Return the committed history as `HistoryChunk` messages in wire format."""
        with self.lock:
            row = self._existing(instance_id)
            if execution_id and execution_id != row.execution_id:
                raise NotFound(
                    f"execution {execution_id!r} of instance {instance_id!r} not found; the sidecar keeps "
                    f"only the current execution {row.execution_id!r}",
                    instance_id,
                )
            events = self.store.history(instance_id)
        chunks = [
            ev.repeated(1, events[start : start + _HISTORY_CHUNK_EVENTS])
            for start in range(0, len(events), _HISTORY_CHUNK_EVENTS)
        ]
        return chunks

    def query_instances(self, query: pb.InstanceQuery) -> pb.QueryInstancesResponse:
        after = _cursor(query.continuationToken.value, "continuation token") if query.continuationToken.value else None
        if query.maxInstanceCount < 0:
            raise InvalidArgument(f"maxInstanceCount must not be negative, got {query.maxInstanceCount}")
        limit = query.maxInstanceCount or None
        with self.lock:
            rows = self.store.query_instances(
                statuses=list(query.runtimeStatus),
                created_from=query.createdTimeFrom.ToMicroseconds() if query.HasField("createdTimeFrom") else None,
                created_to=query.createdTimeTo.ToMicroseconds() if query.HasField("createdTimeTo") else None,
                prefix=query.instanceIdPrefix.value or None,
                after=after,
                limit=None if limit is None else limit + 1,
            )
        response = pb.QueryInstancesResponse()
        more = limit is not None and len(rows) > limit
        rows = rows[:limit]
        response.orchestrationState.extend(_state(row, query.fetchInputsAndOutputs) for row in rows)
        if more:
            response.continuationToken.value = f"{rows[-1].created_at}|{rows[-1].instance_id}"
        return response

    def list_instance_ids(self, request: pb.ListInstanceIdsRequest) -> pb.ListInstanceIdsResponse:
        statuses = list(request.runtimeStatus) or sorted(ev.TERMINAL_STATUSES)
        not_terminal = [status for status in statuses if status not in ev.TERMINAL_STATUSES]
        if not_terminal:
            raise InvalidArgument(
                f"runtimeStatus lists {_status_list(not_terminal)}; only COMPLETED, FAILED and TERMINATED "
                "instances have a completion time"
            )
        if request.pageSize < 0:
            raise InvalidArgument(f"pageSize must not be negative, got {request.pageSize}")
        page_size = request.pageSize or _DEFAULT_ID_PAGE
        after = _cursor(request.lastInstanceKey.value, "lastInstanceKey") if request.lastInstanceKey.value else None
        with self.lock:
            rows = self.store.list_terminal_ids(
                statuses,
                request.completedTimeFrom.ToMicroseconds() if request.HasField("completedTimeFrom") else None,
                request.completedTimeTo.ToMicroseconds() if request.HasField("completedTimeTo") else None,
                after,
                page_size + 1,
            )
        response = pb.ListInstanceIdsResponse(instanceIds=[instance_id for instance_id, _ in rows[:page_size]])
        if len(rows) > page_size:
            last_id, last_completed = rows[page_size - 1]
            response.lastInstanceKey.value = f"{last_completed}|{last_id}"
        return response

    # ------------------------------------------------------------------ control

    @_durable
    def raise_event(self, instance_id: str, name: str, data: str | None) -> None:
        if not name:
            raise InvalidArgument(f"event name is required for instance {instance_id!r}", instance_id)
        with self.lock:
            row = self._existing(instance_id)
            if row.status in ev.TERMINAL_STATUSES:
                logger.info(
                    "Event %r for instance %s dropped: the instance is %s", name, instance_id, ev.status_name(row.status)
                )
                return
            effects = self._effects()
            event = ev.new_event(effects.now)
            event.eventRaised.name = name
            if data is not None:
                event.eventRaised.input.value = data
            self._commit(effects, lambda: ops.add_event(self.store, effects, instance_id, event))

    @_durable
    def terminate(self, instance_id: str, output: str | None, recursive: bool) -> None:
        with self.lock:
            row = self._existing(instance_id)
            effects = self._effects()
            self._commit(
                effects, lambda: ops.terminate_instance(self.store, effects, row, output, recurse=recursive)
            )

    @_durable
    def suspend(self, instance_id: str, reason: str | None) -> None:
        with self.lock:
            row = self._existing(instance_id)
            if row.status in ev.TERMINAL_STATUSES or ops.effective_suspended(self.store, row):
                return
            effects = self._effects()
            event = ev.new_event(effects.now)
            event.executionSuspended.SetInParent()
            if reason is not None:
                event.executionSuspended.input.value = reason
            self._commit(effects, lambda: ops.add_event(self.store, effects, instance_id, event))

    @_durable
    def resume(self, instance_id: str, reason: str | None) -> None:
        with self.lock:
            row = self._existing(instance_id)
            # NOTE: a resume that reaches a worker whose orchestration is not suspended
            # fails that orchestration in the official SDK, so only real resumes pass.
            if row.status in ev.TERMINAL_STATUSES or not ops.effective_suspended(self.store, row):
                logger.info("Resume of instance %s ignored: it is not suspended", instance_id)
                return
            effects = self._effects()
            event = ev.new_event(effects.now)
            event.executionResumed.SetInParent()
            if reason is not None:
                event.executionResumed.input.value = reason
            self._commit(effects, lambda: ops.add_event(self.store, effects, instance_id, event))

    # ------------------------------------------------------------------ purge

    @_durable
    def purge_instance(self, instance_id: str, recursive: bool) -> int:
        """Purge one terminal instance (and its descendants if `recursive`); return the count removed."""
        with self.lock:
            self._existing_terminal(instance_id, "purged (terminate it first)")
            return self._purge([instance_id], recursive)

    @_durable
    def purge_batch(self, instance_ids: list[str], recursive: bool) -> int:
        """Purge the terminal instances among `instance_ids`; unknown and running ones are skipped."""
        if len(instance_ids) > _MAX_BATCH_PURGE:
            raise InvalidArgument(
                f"instanceBatch lists {len(instance_ids)} ids; purge at most {_MAX_BATCH_PURGE} per request"
            )
        with self.lock:
            return self._purge(instance_ids, recursive)

    @_durable
    def purge_where(self, purge_filter: pb.PurgeInstanceFilter, recursive: bool) -> tuple[int, bool]:
        """Purge terminal instances matching a filter; return (count removed, finished)."""
        statuses = list(purge_filter.runtimeStatus) or sorted(ev.TERMINAL_STATUSES)
        statuses = [status for status in statuses if status in ev.TERMINAL_STATUSES]
        budget = purge_filter.timeout.ToTimedelta().total_seconds() if purge_filter.HasField("timeout") else None
        deadline = None if budget is None or budget <= 0 else time.monotonic() + budget
        deleted = 0
        after: tuple[int, str] | None = None
        while statuses:
            with self.lock:
                rows = self.store.query_instances(
                    statuses=statuses,
                    created_from=(
                        purge_filter.createdTimeFrom.ToMicroseconds()
                        if purge_filter.HasField("createdTimeFrom")
                        else None
                    ),
                    created_to=(
                        purge_filter.createdTimeTo.ToMicroseconds() if purge_filter.HasField("createdTimeTo") else None
                    ),
                    prefix=None,
                    after=after,
                    limit=100,
                )
                if not rows:
                    break
                after = (rows[-1].created_at, rows[-1].instance_id)
                deleted += self._purge([row.instance_id for row in rows], recursive)
            if deadline is not None and time.monotonic() >= deadline:
                return deleted, False
        return deleted, True

    def _purge(self, instance_ids: list[str], recursive: bool) -> int:
        effects = self._effects()
        removed: list[str] = []

        def remove(instance_id: str) -> None:
            info = self.store.dispatch_info(instance_id)
            if info is None or info[0] not in ev.TERMINAL_STATUSES:
                return
            if recursive:
                for child_id in self.store.child_ids(instance_id):
                    remove(child_id)
            self.store.delete_instance(instance_id)
            effects.forgotten.append(instance_id)
            removed.append(instance_id)

        def change() -> None:
            for instance_id in instance_ids:
                remove(instance_id)

        self._commit(effects, change)
        if removed:
            logger.info("Purged %d instances: %s", len(removed), ", ".join(removed[:10]) + (" ..." if len(removed) > 10 else ""))
        return len(removed)

    # ------------------------------------------------------------------ work items

    @_durable
    def complete_orchestration(self, response: pb.OrchestratorResponse) -> None:
        validate_response(response)
        with self.lock:
            lease = self.dispatcher.orchestration_lease(response.completionToken, response.instanceId)
            row = self.store.get_instance(lease.instance_id)
            if row is None or row.execution_id != lease.execution_id:
                self.dispatcher.end_orchestration_lease(lease)
                raise NotFound(f"orchestration instance {lease.instance_id!r} no longer exists", lease.instance_id)
            effects = self._effects()
            self._commit(effects, lambda: apply_response(self.store, effects, row, lease, response))
            self.dispatcher.history_delivered(lease)
            self.dispatcher.end_orchestration_lease(lease)
            self.dispatcher.reschedule(lease.instance_id, coalesce=True)

    def abandon_orchestration(self, token: str) -> None:
        with self.lock:
            lease = self.dispatcher.orchestration_lease(token, "")
            logger.info("Orchestration work item of instance %s abandoned; redelivering it", lease.instance_id)
            self.dispatcher.release_orchestration(lease)

    @_durable
    def complete_activity(self, response: pb.ActivityResponse) -> None:
        with self.lock:
            entry = self.dispatcher.activity_lease(response.completionToken, response.instanceId, response.taskId)
            if response.instanceId and response.instanceId != entry.instance_id:
                raise InvalidArgument(
                    f"completion token {response.completionToken!r} belongs to an activity of instance "
                    f"{entry.instance_id!r}, not of {response.instanceId!r}",
                    response.instanceId,
                )
            effects = self._effects()

            def change() -> None:
                self.store.delete_activity(entry.seq)
                info = self.store.dispatch_info(entry.instance_id)
                # Results for a finished or newer execution have no one to receive them.
                if info is None or info[0] in ev.TERMINAL_STATUSES or info[3] != entry.execution_id:
                    return
                event = ev.new_event(effects.now)
                if response.HasField("failureDetails"):
                    event.taskFailed.taskScheduledId = entry.task_id
                    event.taskFailed.failureDetails.CopyFrom(response.failureDetails)
                else:
                    event.taskCompleted.taskScheduledId = entry.task_id
                    if response.HasField("result"):
                        event.taskCompleted.result.CopyFrom(response.result)
                ops.add_event(self.store, effects, entry.instance_id, event)

            self._commit(effects, change)
            self.dispatcher.end_activity_lease(entry)

    def abandon_activity(self, token: str) -> None:
        with self.lock:
            entry = self.dispatcher.activity_lease(token, "", 0) if token else None
            if entry is None:
                raise InvalidArgument("completionToken is required to abandon an activity work item")
            logger.info("Activity %r of instance %s abandoned; redelivering it", entry.name, entry.instance_id)
            self.dispatcher.release_activity(entry)
