"""Work-item dispatch: worker streams, leases, completion tokens and timers.

How dispatch works
------------------

SQLite is the source of truth. The dispatcher keeps a small in-memory view
next to it that is rebuilt from the database at start-up, so nothing here needs
to survive a crash:

* the *ready queue* of instances that have at least one visible inbox event and
  no outstanding work item,
* the *activity queue* of scheduled activities that no worker holds,
* the *leases*: every work item handed to a worker, keyed by its completion
  token and remembered on the stream that received it,
* a *timer heap* of instances whose next inbox event becomes visible later
  (durable timers, delayed starts).

Invariants, all guarded by one lock that also serializes every database write:

1. An instance has at most one outstanding orchestration work item. While it is
   leased, new events stay in the inbox. Inbox rows are deleted only when the
   completion that consumed them commits. Releasing a lease (worker gone,
   abandon, lease expiry) therefore needs no undo. The instance is made ready
   again, and its next work item carries the same events plus any newer ones.
2. A completion is applied only if its token names a live lease. Completion
   tokens are random per dispatch, so a completion from a worker whose item was
   redelivered, or a duplicate of an applied completion, matches nothing and is
   rejected with NOT_FOUND before anything is written.
3. Readiness is recomputed from the database (`reschedule`) after every change
   to an instance's inbox or status, never tracked incrementally. Duplicate
   wake-ups are therefore harmless.
4. Worker streams pull: each `GetWorkItems` call runs on its own server thread,
   which waits on a condition until an item fits its filters and concurrency
   limits. Adding work notifies the condition, so dispatch has no polling delay.
5. The timer thread sleeps until the earliest timer or lease deadline and is
   woken when an earlier one is added. Timers that came due while the sidecar
   was down are visible at once after start-up, because visibility is a
   comparison against the current time.
6. Changes are applied to the database and to these queues under the lock, but
   concurrent requests share one COMMIT (see `Engine._commit`). A request is
   answered only after its commit, so an acknowledged change survives a crash.
   Work dispatched from a change that then fails to commit is harmless: its
   lease is dropped and the uncommitted work never existed for the database.
"""

from __future__ import annotations

import collections
import heapq
import itertools
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import TypeVar

from durable._proto import orchestrator_service_pb2 as pb
from durable._runtime import PAST_EVENTS_OFFSET

from . import _events as ev
from ._errors import InvalidArgument, NotFound
from ._store import Store
from ._workitems import ActivityEntry, OrchestrationLease, Stream, WorkItemFilter, filter_from

__all__ = ["Dispatcher", "HEALTH_PING"]

logger = logging.getLogger("durable.sidecar.dispatch")

T = TypeVar("T")

# A `WorkItem` with only `healthPing` set, in wire format.
HEALTH_PING = ev.field(4, b"")

_STALE_TOKEN_HINT = (
    "it was already completed or abandoned, or it was redelivered because its worker "
    "disconnected or its lease expired"
)


# A fan-in's coalescing window grows by this much per activity still out, up to
# the cap (or the configured window, if larger). Measured with a 10,000-activity
# fan-out on our sidecar: about 100 work items instead of 500 to 600.
_COALESCE_PER_ACTIVITY_US = 25
_COALESCE_CAP_US = 250_000


class Dispatcher:
    """Hands work items to worker streams and keeps leases, timers and waiters."""

    def __init__(
        self, store: Store, *, lease_timeout: float, health_ping_interval: float, coalesce_window: float = 0.0
    ) -> None:
        self.store = store
        self.coalesce_us = int(coalesce_window * 1_000_000)
        self.lock = threading.RLock()
        self.lease_timeout = lease_timeout
        self.health_ping_interval = health_ping_interval
        self._work = threading.Condition(self.lock)
        self._timer_wake = threading.Condition(self.lock)
        self._closed = False

        self._ready: collections.deque[str] = collections.deque()
        self._ready_meta: dict[str, tuple[str, str | None]] = {}

        self._orchestrations_by_token: dict[str, OrchestrationLease] = {}
        self._orchestrations_by_instance: dict[str, OrchestrationLease] = {}

        self._activities: dict[int, ActivityEntry] = {}
        self._activity_queue: collections.deque[int] = collections.deque()
        self._activities_by_instance: dict[str, set[int]] = {}
        self._activities_by_token: dict[str, ActivityEntry] = {}

        self._timers: list[tuple[int, str]] = []
        self._timer_due: dict[str, int] = {}
        self._next_lease_scan = time.monotonic() + lease_timeout / 4

        # Per instance, where the history ended after the last applied completion:
        # (execution id, next history sequence number, number of events).
        self._history_delivered: dict[str, tuple[str, int, int]] = {}

        self._streams: dict[int, Stream] = {}
        self._stream_ids = itertools.count(1)
        self._waiters: dict[str, tuple[threading.Condition, int]] = {}
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Rebuild the in-memory queues from the database and start the timer thread."""
        with self.lock:
            self._load()
            logger.debug(
                "Loaded %d ready instances, %d queued activities and %d timers",
                len(self._ready_meta),
                len(self._activities),
                len(self._timer_due),
            )
        self._thread = threading.Thread(target=self._run_timers, name="durable-sidecar-timers", daemon=True)
        self._thread.start()

    def reload(self) -> None:
        """Rebuild the queues from the database after a failed commit; outstanding leases are dropped."""
        for stream in self._streams.values():
            stream.orchestration_tokens.clear()
            stream.activity_tokens.clear()
        self._ready.clear()
        self._ready_meta.clear()
        self._orchestrations_by_token.clear()
        self._orchestrations_by_instance.clear()
        self._activities.clear()
        self._activity_queue.clear()
        self._activities_by_instance.clear()
        self._activities_by_token.clear()
        self._timers.clear()
        self._timer_due.clear()
        self._load()

    def _load(self) -> None:
        for row in self.store.all_activities():
            self._queue_activity(ActivityEntry(*row))
        for instance_id in self.store.instance_ids_with_inbox():
            self.reschedule(instance_id)
        self._work.notify_all()

    def close(self) -> None:
        """End every worker stream and waiter and stop the timer thread."""
        with self.lock:
            self._closed = True
            self._work.notify_all()
            self._timer_wake.notify_all()
            for condition, _ in self._waiters.values():
                condition.notify_all()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    @property
    def closed(self) -> bool:
        return self._closed

    # ------------------------------------------------------------------ readiness

    def is_leased(self, instance_id: str) -> bool:
        return instance_id in self._orchestrations_by_instance

    def reschedule(self, instance_id: str, *, coalesce: bool = False) -> None:
        """Recompute from the database whether the instance can be dispatched now or later.

        With `coalesce`, events that are due wait for the coalescing window
        while activities of the instance are still out.
        """
        if instance_id in self._orchestrations_by_instance or instance_id in self._ready_meta:
            return
        info = self.store.dispatch_info(instance_id)
        if info is None:
            return
        status, name, version, _ = info
        if status in ev.TERMINAL_STATUSES:
            return
        now = ev.now_us()

        # NOTE: a delayed start keeps every event queued, so that no work item can
        # reach a worker before the one carrying `executionStarted`.
        if status == ev.PENDING:
            start_at = self.store.start_visible_at(instance_id, ev.EXECUTION_STARTED)
            if start_at is not None and start_at > now:
                self._add_timer(instance_id, start_at)
                return

        # While suspended, only a resume or a terminate releases the held events.
        kinds = (ev.EXECUTION_RESUMED, ev.EXECUTION_TERMINATED) if status == ev.SUSPENDED else ()
        if self.store.has_due_inbox(instance_id, now, kinds):
            # Results that came in while the last work item was out wait too, or else
            # a fan-in would get one work item per worker round trip.
            if coalesce and status == ev.RUNNING and self._wait_for_more_results(instance_id, now, already_out=0):
                return
            self._ready.append(instance_id)
            self._ready_meta[instance_id] = (name, version)
            self._work.notify_all()
        next_visible = self.store.next_visible_at(instance_id, now)
        if next_visible is not None:
            self._add_timer(instance_id, next_visible)

    def event_added(self, instance_id: str, visible_at: int) -> None:
        """Update readiness after one inbox event was added, without re-reading the inbox if possible."""
        if instance_id in self._orchestrations_by_instance or instance_id in self._ready_meta:
            return
        info = self.store.dispatch_info(instance_id)
        # Only the common case takes the shortcut; everything else is recomputed.
        if info is None or info[0] != ev.RUNNING:
            self.reschedule(instance_id)
            return
        now = ev.now_us()
        if visible_at > now:
            self._add_timer(instance_id, visible_at)
            return
        # NOTE: while other activities of the instance are still out, more results
        # are about to arrive. Holding the instance back for a moment lets one work
        # item carry many of them, where dispatching at once would send the whole
        # history again for each result of a large fan-out. The activity whose
        # result this is still counts here, so a lone activity (a chain, the last
        # result of a fan-in) is dispatched at once.
        if self._wait_for_more_results(instance_id, now, already_out=1):
            return
        self._ready.append(instance_id)
        self._ready_meta[instance_id] = (info[1], info[2])
        self._work.notify_all()

    def _wait_for_more_results(self, instance_id: str, now: int, *, already_out: int) -> bool:
        """Start the coalescing window if more than `already_out` activities are out. Return whether it started.

        `already_out` counts activities whose results are already in the inbox
        but whose leases are still open.
        """
        outstanding = len(self._activities_by_instance.get(instance_id, ()))
        if not self.coalesce_us or outstanding <= already_out:
            return False
        cap = max(self.coalesce_us, _COALESCE_CAP_US)
        self._add_timer(instance_id, now + min(self.coalesce_us + outstanding * _COALESCE_PER_ACTIVITY_US, cap))
        return True

    def forget(self, instance_id: str) -> None:
        """Drop all in-memory state of an instance that was deleted or replaced."""
        lease = self._orchestrations_by_instance.pop(instance_id, None)
        if lease is not None:
            self._drop_orchestration_lease(lease)
        self._ready_meta.pop(instance_id, None)
        self._history_delivered.pop(instance_id, None)
        self.drop_queued_activities(instance_id)

    def queue_activity(self, entry: ActivityEntry) -> None:
        self._queue_activity(entry)
        self._work.notify_all()

    def _queue_activity(self, entry: ActivityEntry) -> None:
        self._activities[entry.seq] = entry
        self._activity_queue.append(entry.seq)
        self._activities_by_instance.setdefault(entry.instance_id, set()).add(entry.seq)

    def drop_queued_activities(self, instance_id: str) -> None:
        """Forget the instance's activities that no worker has leased (their rows were deleted)."""
        seqs = self._activities_by_instance.get(instance_id)
        if not seqs:
            return
        for seq in list(seqs):
            entry = self._activities[seq]
            if entry.token is None:
                del self._activities[seq]
                seqs.discard(seq)
        if not seqs:
            del self._activities_by_instance[instance_id]

    def _add_timer(self, instance_id: str, due: int) -> None:
        current = self._timer_due.get(instance_id)
        if current is not None and current <= due:
            return
        self._timer_due[instance_id] = due
        earliest = self._timers[0][0] if self._timers else None
        heapq.heappush(self._timers, (due, instance_id))
        if earliest is None or due < earliest:
            self._timer_wake.notify()

    # ------------------------------------------------------------------ streams

    def open_stream(self, request: pb.GetWorkItemsRequest, peer: str) -> Stream:
        """Register a worker stream with the limits and filters from its request."""
        orchestration_filter: WorkItemFilter | None = None
        activity_filter: WorkItemFilter | None = None
        if request.HasField("workItemFilters"):
            orchestration_filter = filter_from(request.workItemFilters.orchestrations)
            activity_filter = filter_from(request.workItemFilters.activities)
        with self.lock:
            stream = Stream(
                stream_id=next(self._stream_ids),
                peer=peer,
                max_orchestrations=request.maxConcurrentOrchestrationWorkItems,
                max_activities=request.maxConcurrentActivityWorkItems,
                orchestration_filter=orchestration_filter,
                activity_filter=activity_filter,
                streams_history=pb.WORKER_CAPABILITY_HISTORY_STREAMING in request.capabilities,
            )
            self._streams[stream.stream_id] = stream
        logger.info("Worker stream %d opened by %s", stream.stream_id, peer)
        return stream

    def close_stream(self, stream: Stream) -> None:
        """Unregister a stream and put back at once every work item it still holds."""
        with self.lock:
            if stream.closed:
                return
            stream.closed = True
            self._streams.pop(stream.stream_id, None)
            held = len(stream.orchestration_tokens) + len(stream.activity_tokens)
            for token in list(stream.orchestration_tokens):
                self.release_orchestration(self._orchestrations_by_token[token])
            for token in list(stream.activity_tokens):
                self.release_activity(self._activities_by_token[token])
            self._work.notify_all()
        if held:
            logger.warning(
                "Worker stream %d from %s closed while holding %d work items; they are redelivered",
                stream.stream_id,
                stream.peer,
                held,
            )
        else:
            logger.info("Worker stream %d from %s closed", stream.stream_id, stream.peer)

    def next_work_item(self, stream: Stream) -> bytes | None:
        """Block until a work item fits the stream, returning it in wire format.

        Returns `HEALTH_PING` after `health_ping_interval` seconds without work,
        and None once the stream or the sidecar is closed.
        """
        with self.lock:
            ping_at = time.monotonic() + self.health_ping_interval
            while True:
                if stream.closed or self._closed:
                    return None
                item = self._take_orchestration(stream) or self._take_activity(stream)
                if item is not None:
                    return item
                remaining = ping_at - time.monotonic()
                if remaining <= 0:
                    return HEALTH_PING
                self._work.wait(remaining)

    def _take_orchestration(self, stream: Stream) -> bytes | None:
        if not self._ready or not stream.wants_orchestrations():
            return None
        for _ in range(len(self._ready)):
            instance_id = self._ready.popleft()
            meta = self._ready_meta.get(instance_id)
            if meta is None:
                continue
            if stream.orchestration_filter is not None and not stream.orchestration_filter.accepts(*meta):
                self._ready.append(instance_id)
                continue
            del self._ready_meta[instance_id]
            item = self._lease_orchestration(stream, instance_id)
            if item is not None:
                return item
        return None

    def _lease_orchestration(self, stream: Stream, instance_id: str) -> bytes | None:
        info = self.store.dispatch_info(instance_id)
        if info is None or info[0] in ev.TERMINAL_STATUSES:
            return None
        status, _, _, execution_id = info
        now = ev.now_us()
        rows = self.store.due_inbox(instance_id, now)
        kinds = {kind for _, kind, _ in rows}
        if not rows or (status == ev.PENDING and ev.EXECUTION_STARTED not in kinds):
            self.reschedule(instance_id)
            return None

        started = ev.new_event(now)
        started.orchestratorStarted.SetInParent()
        started_bytes = started.SerializeToString()
        token = uuid.uuid4().hex
        lease = OrchestrationLease(
            token=token,
            instance_id=instance_id,
            execution_id=execution_id,
            started_event=started_bytes,
            events=rows,
            stream=stream,
            deadline=time.monotonic() + self.lease_timeout,
        )
        self._orchestrations_by_token[token] = lease
        self._orchestrations_by_instance[instance_id] = lease
        stream.orchestration_tokens.add(token)

        # NOTE: the request is assembled from the stored event bytes without parsing
        # them, which keeps dispatch cheap for long histories. The first new event
        # is always the fresh `orchestratorStarted`, which sets the orchestration clock.
        past, tail_offset, history_count = self._past_events(stream, instance_id, execution_id)
        new_count = 1 + len(rows)
        lease.history_end = (
            execution_id,
            self.store.next_history_seq(instance_id) + new_count,
            history_count + new_count,
        )
        request = (
            ev.field(1, instance_id.encode())
            + ev.string_value(2, execution_id)
            + ev.repeated(3, past)
            + ev.repeated(4, [started_bytes] + [event for _, _, event in rows])
        )
        if tail_offset is not None:
            # Serialized messages concatenate as a merge, so this adds the two fields.
            marker = pb.OrchestratorRequest(requiresHistoryStreaming=True)
            marker.properties[PAST_EVENTS_OFFSET].number_value = tail_offset
            request += marker.SerializeToString()
        logger.debug("Dispatching %d new events of instance %s to stream %d", len(rows), instance_id, stream.stream_id)
        return ev.field(1, request) + ev.field(10, token.encode())

    def _past_events(self, stream: Stream, instance_id: str, execution_id: str) -> tuple[list[bytes], int | None, int]:
        """Return the past events to send, the offset they start at if only a tail, and the history length.

        A worker that streams history and already saw the history up to the
        last applied completion gets only the events after it, marked with
        `requiresHistoryStreaming` and the offset in the `durable.pastEventsOffset`
        property; a worker whose cache does not match fetches the rest with
        `StreamInstanceHistory`. Every other worker gets the whole history.
        """
        delivered = self._history_delivered.get(instance_id)
        if stream.streams_history and delivered is not None and delivered[0] == execution_id:
            _, next_seq, count = delivered
            tail = self.store.history_from(instance_id, next_seq)
            return tail, count, count + len(tail)
        history = self.store.history(instance_id)
        return history, None, len(history)

    def history_delivered(self, lease: OrchestrationLease) -> None:
        """Remember where the history ends now that the lease's completion was applied."""
        if lease.history_end is not None:
            self._history_delivered[lease.instance_id] = lease.history_end

    def _take_activity(self, stream: Stream) -> bytes | None:
        if not self._activity_queue or not stream.wants_activities():
            return None
        for _ in range(len(self._activity_queue)):
            seq = self._activity_queue.popleft()
            entry = self._activities.get(seq)
            if entry is None or entry.token is not None:
                continue
            if stream.activity_filter is not None and not stream.activity_filter.accepts(entry.name, entry.version):
                self._activity_queue.append(seq)
                continue
            token = uuid.uuid4().hex
            entry.token = token
            entry.stream = stream
            entry.deadline = time.monotonic() + self.lease_timeout
            self._activities_by_token[token] = entry
            stream.activity_tokens.add(token)
            return ev.field(2, entry.request) + ev.field(10, token.encode())
        return None

    # ------------------------------------------------------------------ leases

    def orchestration_lease(self, token: str, instance_id: str) -> OrchestrationLease:
        """Find the outstanding orchestration work item a completion or abandon refers to."""
        if token:
            lease = self._orchestrations_by_token.get(token)
            if lease is None:
                raise NotFound(
                    f"no outstanding orchestration work item has completion token {token!r}; {_STALE_TOKEN_HINT}",
                    instance_id or None,
                )
            if instance_id and instance_id != lease.instance_id:
                raise InvalidArgument(
                    f"completion token {token!r} belongs to instance {lease.instance_id!r}, "
                    f"not to {instance_id!r}",
                    instance_id,
                )
            return lease
        # Workers built on protocol versions without tokens identify the item by instance.
        by_instance = self._orchestrations_by_instance.get(instance_id)
        if by_instance is None:
            raise NotFound(
                f"instance {instance_id!r} has no outstanding orchestration work item; {_STALE_TOKEN_HINT}",
                instance_id or None,
            )
        return by_instance

    def end_orchestration_lease(self, lease: OrchestrationLease) -> None:
        """Forget a lease whose completion was applied."""
        self._orchestrations_by_instance.pop(lease.instance_id, None)
        self._drop_orchestration_lease(lease)

    def release_orchestration(self, lease: OrchestrationLease) -> None:
        """Forget a lease without applying it, so that its events are dispatched again."""
        self.end_orchestration_lease(lease)
        self.reschedule(lease.instance_id)

    def _drop_orchestration_lease(self, lease: OrchestrationLease) -> None:
        self._orchestrations_by_token.pop(lease.token, None)
        if lease.stream is not None:
            lease.stream.orchestration_tokens.discard(lease.token)
            lease.stream = None
        self._work.notify_all()

    def activity_lease(self, token: str, instance_id: str, task_id: int) -> ActivityEntry:
        """Find the outstanding activity work item a completion or abandon refers to."""
        if token:
            entry = self._activities_by_token.get(token)
            if entry is None:
                raise NotFound(
                    f"no outstanding activity work item has completion token {token!r}; {_STALE_TOKEN_HINT}",
                    instance_id or None,
                )
            return entry
        matches = [
            entry
            for entry in self._activities_by_token.values()
            if entry.instance_id == instance_id and entry.task_id == task_id
        ]
        if len(matches) != 1:
            raise NotFound(
                f"no single outstanding activity work item matches instance {instance_id!r} and task {task_id}; "
                "send the completion token of the work item",
                instance_id or None,
            )
        return matches[0]

    def end_activity_lease(self, entry: ActivityEntry) -> None:
        """Forget an activity whose result was applied."""
        self._unlease_activity(entry)
        self._activities.pop(entry.seq, None)
        seqs = self._activities_by_instance.get(entry.instance_id)
        if seqs is not None:
            seqs.discard(entry.seq)
            if not seqs:
                del self._activities_by_instance[entry.instance_id]

    def release_activity(self, entry: ActivityEntry) -> None:
        """Put a held activity back at the head of the queue for redelivery."""
        self._unlease_activity(entry)
        if entry.seq in self._activities:
            self._activity_queue.appendleft(entry.seq)
        self._work.notify_all()

    def _unlease_activity(self, entry: ActivityEntry) -> None:
        if entry.token is not None:
            self._activities_by_token.pop(entry.token, None)
            if entry.stream is not None:
                entry.stream.activity_tokens.discard(entry.token)
        entry.token = None
        entry.stream = None
        self._work.notify_all()

    def _expire_leases(self) -> None:
        now = time.monotonic()
        for lease in [lease for lease in self._orchestrations_by_token.values() if lease.deadline <= now]:
            logger.warning(
                "Orchestration work item of instance %s was not completed within %.0f s; redelivering it",
                lease.instance_id,
                self.lease_timeout,
            )
            self.release_orchestration(lease)
        for entry in [entry for entry in self._activities_by_token.values() if entry.deadline <= now]:
            logger.warning(
                "Activity %r of instance %s was not completed within %.0f s; redelivering it",
                entry.name,
                entry.instance_id,
                self.lease_timeout,
            )
            self.release_activity(entry)

    # ------------------------------------------------------------------ timers

    def _run_timers(self) -> None:
        with self.lock:
            while not self._closed:
                try:
                    self._fire_due_timers()
                except Exception:
                    logger.exception("Timer processing failed; retrying in one second")
                    self._timer_wake.wait(1.0)
                    continue
                wait = self._next_lease_scan - time.monotonic()
                if self._timers:
                    wait = min(wait, (self._timers[0][0] - ev.now_us()) / 1e6)
                self._timer_wake.wait(max(wait, 0.001))

    def _fire_due_timers(self) -> None:
        now = ev.now_us()
        while self._timers and self._timers[0][0] <= now:
            due, instance_id = heapq.heappop(self._timers)
            if self._timer_due.get(instance_id) == due:
                del self._timer_due[instance_id]
            self.reschedule(instance_id)
        if time.monotonic() >= self._next_lease_scan:
            self._expire_leases()
            self._next_lease_scan = time.monotonic() + max(self.lease_timeout / 4, 0.05)

    # ------------------------------------------------------------------ waiters

    def notify_instance(self, instance_id: str) -> None:
        """Wake the callers waiting for a change of this instance."""
        waiter = self._waiters.get(instance_id)
        if waiter is not None:
            waiter[0].notify_all()

    def wait_for_instance(
        self,
        instance_id: str,
        check: Callable[[], T | None],
        timeout: float | None,
        cancelled: Callable[[], bool],
    ) -> T | None:
        """Return the first non-None result of `check`, re-run after each change of the instance.

        Returns None when `timeout` seconds pass, the caller is cancelled or the sidecar stops.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.lock:
            condition, count = self._waiters.get(instance_id, (threading.Condition(self.lock), 0))
            self._waiters[instance_id] = (condition, count + 1)
            try:
                while True:
                    result = check()
                    if result is not None:
                        return result
                    if self._closed or cancelled():
                        return None
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return None
                    condition.wait(remaining)
            finally:
                condition, count = self._waiters[instance_id]
                if count <= 1:
                    del self._waiters[instance_id]
                else:
                    self._waiters[instance_id] = (condition, count - 1)
