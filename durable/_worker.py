"""The worker: one `GetWorkItems` stream feeding orchestrations and activities.

Threads, and what each one does:

* The stream reader calls `Hello`, opens `GetWorkItems` and hands every work
  item to a `Gate` without running anything itself. When the stream ends for
  any reason but `stop()`, it reconnects with exponential backoff and jitter.
* Orchestration work items run the replay runtime on a small thread pool.
  Replays are pure Python and hold the GIL, so more threads than this would
  only add switching.
* Sync activities run on a thread pool that grows, up to the activity limit,
  only when no idle thread is free. `async def` activities run on one event
  loop thread, which also runs the retry timers and the stream watchdog.
* Completion calls are sent with the stub's non-blocking `future()` form, so
  no thread waits for the sidecar's reply. The reply callback frees the job's
  place in its gate; a failed call is retried from the event loop.

A job holds its place in its gate from receipt until the sidecar accepted its
completion, so `max_concurrent_*` bound the work items in flight, which is
also what the sidecar counts.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import signal
import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from types import FrameType, TracebackType
from typing import Any

import grpc
from google.protobuf import empty_pb2

from durable._activity import Activity
from durable._channel import ChannelSettings, open_channel
from durable._orchestration import Orchestration
from durable._proto import orchestrator_service_pb2 as pb
from durable._proto import orchestrator_service_pb2_grpc as pb_grpc
from durable._runtime import PAST_EVENTS_OFFSET, ReplayCache, run_work_item
from durable._worker_activities import ActivityRunner
from durable._worker_delivery import ABANDON_TIMEOUT, Delivery, Response, describe_error, log_abandon_failure
from durable._worker_jobs import Gate, Job, JobKind

__all__ = ["Worker"]

logger = logging.getLogger("durable.worker")

# Replays hold the GIL; two threads keep one slow replay from stalling the rest.
_ORCHESTRATION_THREADS = 2

_HELLO_TIMEOUT = 10.0
_HISTORY_TIMEOUT = 30.0

# Reconnect backoff: base * 2**(attempt-1), capped, times a jitter in [0.5, 1].
_RECONNECT_BASE = 0.1
_RECONNECT_CAP = 15.0

# A sidecar that has sent health pings on this stream and then stays silent
# this long has lost the connection. Sidecars that never ping are not watched.
_DEFAULT_IDLE_TIMEOUT = 120.0


class Worker:
    """Hosts orchestration classes and activities on one connection to a sidecar.

    The worker calls `Hello` and opens one `GetWorkItems` stream, sending the
    sidecar its concurrency limits and, as work-item filters, the names it
    hosts. It runs what arrives: orchestration work items through the replay
    runtime, sync activities on a thread pool and `async def` activities on an
    event loop, each kind within its own limit.

    Names the worker does not host: with `filter_work_items=True` (the
    default) a sidecar that honours filters only sends hosted names, so
    instances of other names wait, still PENDING, for a worker that hosts
    them; starting an instance before its worker is up is normal. A work item
    that arrives for an unknown name anyway (the sidecar ignores filters, as
    the Go sidecar does, or `filter_work_items=False`) is failed, not
    abandoned: the instance ends FAILED with
    `durable.errors.OrchestrationNotRegisteredError` (for activities, the
    task fails with `ActivityNotRegisteredError`) naming it and listing what
    is registered. Abandoning would hand the item back to the same sidecar,
    which would offer it again, to this worker too, without end and without
    anything a client can see.

    When the stream ends for any reason but `stop()` (sidecar restart, the
    server cancelling the stream, a network error, or no message for
    `idle_timeout` seconds from a sidecar that sends health pings), the worker
    reconnects with exponential backoff and jitter and logs every attempt.
    Work items already received keep running and their results are still
    sent. A completion call that fails is retried for up to a minute; a result
    that still cannot be delivered is abandoned so the sidecar redelivers the
    work item, and both are logged. A result larger than `max_message_bytes`
    is replaced by a failure that says so, so the instance never waits for it.

    Use it as a context manager, or call `start()` and `stop()`; `run()`
    blocks until SIGINT or SIGTERM.
    """

    def __init__(
        self,
        address: str,
        *,
        orchestrations: Iterable[type[Orchestration[Any, Any]]] = (),
        activities: Iterable[Activity[Any, Any]] = (),
        max_concurrent_orchestrations: int = 100,
        max_concurrent_activities: int = 100,
        secure: bool = False,
        root_certificates: bytes | None = None,
        metadata: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        max_message_bytes: int | None = None,
        filter_work_items: bool = True,
        idle_timeout: float = _DEFAULT_IDLE_TIMEOUT,
        replay_cache: bool = True,
        max_timer_interval: timedelta | None = None,
        fan_in_delay: float = 0.25,
    ) -> None:
        """Configure the worker; nothing connects until `start()`.

        `max_concurrent_*` bound the work items of each kind that run (or wait
        for their completion call) at once; items beyond them wait in arrival
        order. `metadata` is sent with every call (for example Dapr's
        `dapr-app-id`). `max_message_bytes` (default 4 MiB) limits both
        received work items and sent results. With `replay_cache` the worker
        keeps running orchestrations in memory between work items and applies
        only the new events when the sidecar's history matches what it has
        seen, falling back to a full replay otherwise. `max_timer_interval`
        splits longer durable timers into a chain of shorter ones, for
        sidecars or hosted backends that limit how far ahead a timer may be.
        `fan_in_delay` (seconds) bounds how long the worker holds back the
        completion of a work item that produced no new actions while its
        orchestration still waits on several tasks. The hold-back grows with the
        history the sidecar sent, so that a sidecar which sends the whole history
        in every work item gathers more results into the next one; 0 turns it off.
        """
        self._orchestrations = _orchestrations_by_name(orchestrations)
        self._activities = _activities_by_name(activities)
        if max_concurrent_orchestrations < 1:
            raise ValueError(f"max_concurrent_orchestrations must be at least 1, got {max_concurrent_orchestrations}")
        if max_concurrent_activities < 1:
            raise ValueError(f"max_concurrent_activities must be at least 1, got {max_concurrent_activities}")
        if idle_timeout <= 0:
            raise ValueError(f"idle_timeout must be positive, got {idle_timeout}")
        self._settings = ChannelSettings.build(
            address,
            secure=secure,
            root_certificates=root_certificates,
            metadata=metadata,
            max_message_bytes=max_message_bytes,
        )
        self._metadata = self._settings.metadata
        self._max_orchestrations = max_concurrent_orchestrations
        self._max_activities = max_concurrent_activities
        self._filter_work_items = filter_work_items
        self._idle_timeout = idle_timeout
        self._runner = ActivityRunner(self._activities)
        self._replay_cache = ReplayCache() if replay_cache else None
        self._warned_activities: set[str] = set()
        if max_timer_interval is not None and max_timer_interval <= timedelta(0):
            raise ValueError(f"max_timer_interval must be positive, got {max_timer_interval}")
        self._max_timer_interval = max_timer_interval
        if fan_in_delay < 0:
            raise ValueError(f"fan_in_delay must be 0 or more seconds, got {fan_in_delay}")
        self._fan_in_delay = fan_in_delay

        self._lifecycle = threading.Lock()
        self._started = False
        self._stopped = False
        self._stopping = threading.Event()
        self._call_lock = threading.Lock()
        self._current_call: grpc.Future[Any] | grpc.CallIterator[pb.WorkItem] | None = None
        self._last_message = time.monotonic()
        self._saw_health_ping = False

        self._channel: grpc.Channel | None = None
        self._stub: pb_grpc.TaskHubSidecarServiceStub | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._reader: threading.Thread | None = None
        self._delivery: Delivery | None = None
        self._orchestration_pool: ThreadPoolExecutor | None = None
        self._activity_pool: ThreadPoolExecutor | None = None
        self._orchestration_gate = Gate(max_concurrent_orchestrations, self._launch_orchestration)
        self._activity_gate = Gate(max_concurrent_activities, self._launch_activity)

    # ------------------------------------------------------------ lifecycle

    @property
    def address(self) -> str:
        """The sidecar address this worker connects to."""
        return self._settings.target

    def start(self) -> None:
        """Connect to the sidecar and start taking work items; returns at once.

        Connection failures are not raised: the worker keeps retrying with
        backoff in the background and logs each attempt.
        """
        with self._lifecycle:
            if self._started:
                raise RuntimeError("this worker was already started; create a new Worker to start again")
            self._started = True

        self._channel = open_channel(self._settings)
        self._stub = pb_grpc.TaskHubSidecarServiceStub(self._channel)

        self._loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(target=self._run_loop, name="durable-worker-loop", daemon=True)
        self._loop_thread.start()
        self._delivery = Delivery(self._stub, self._metadata, self._loop, self._stopping, self._finish)

        self._orchestration_pool = ThreadPoolExecutor(
            max_workers=min(self._max_orchestrations, _ORCHESTRATION_THREADS),
            thread_name_prefix="durable-orchestration",
        )
        self._activity_pool = ThreadPoolExecutor(
            max_workers=self._max_activities, thread_name_prefix="durable-activity"
        )

        self._reader = threading.Thread(target=self._read_stream, name="durable-worker-stream", daemon=True)
        self._reader.start()
        logger.info(
            "worker started for %s: %d orchestrations, %d activities",
            self._settings.target,
            len(self._orchestrations),
            len(self._activities),
        )

    def stop(self, timeout: float = 30.0) -> None:
        """Stop taking work, let running work finish for up to `timeout` seconds, then abandon the rest.

        Work items received but not started are abandoned at once so the
        sidecar can hand them to another worker. Running `async def`
        activities still running at the deadline are cancelled and abandoned.
        A sync activity cannot be interrupted: if one is still running at the
        deadline its work item is abandoned and its result discarded, and its
        thread ends when the function returns. Calling `stop()` again does
        nothing.
        """
        with self._lifecycle:
            if not self._started or self._stopped:
                self._stopped = True
                return
            self._stopped = True

        deadline = time.monotonic() + max(timeout, 0.0)
        self._stopping.set()
        self._cancel_current_call()

        for job in self._orchestration_gate.close() + self._activity_gate.close():
            self._abandon(job, "the worker is stopping")

        self._orchestration_gate.wait_idle(deadline)
        self._activity_gate.wait_idle(deadline)
        leftover = self._orchestration_gate.running() + self._activity_gate.running()
        for job in leftover:
            job.abandoned = True
            self._abandon(job, f"it was still running {timeout:g} s after stop() was called")
            if job.task is not None and self._loop is not None:
                self._loop.call_soon_threadsafe(job.task.cancel)

        self._shut_down_threads(leftover)
        logger.info("worker stopped for %s", self._settings.target)

    def run(self) -> None:
        """Start the worker and block until SIGINT or SIGTERM (or `stop()` from another thread), then stop."""
        if not self._started:
            self.start()
        requested = threading.Event()
        previous: dict[signal.Signals, Any] = {}
        if threading.current_thread() is threading.main_thread():

            def on_signal(signum: int, frame: FrameType | None) -> None:
                logger.info("received signal %d; stopping the worker", signum)
                requested.set()

            for signum in (signal.SIGINT, signal.SIGTERM):
                previous[signum] = signal.signal(signum, on_signal)
        try:
            while not requested.is_set() and not self._stopping.is_set():
                requested.wait(0.5)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            self.stop()

    def __enter__(self) -> Worker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _shut_down_threads(self, leftover: list[Job]) -> None:
        self._join_reader()
        still_running_sync = any(job.kind is JobKind.ACTIVITY and job.task is None for job in leftover)
        if self._orchestration_pool is not None:
            self._orchestration_pool.shutdown(wait=not any(j.kind is JobKind.ORCHESTRATION for j in leftover))
        if self._activity_pool is not None:
            if still_running_sync:
                logger.warning(
                    "sync activities were still running when the worker stopped; "
                    "their threads end when the functions return"
                )
            self._activity_pool.shutdown(wait=not still_running_sync, cancel_futures=True)
        self._stop_loop()
        if self._channel is not None:
            self._channel.close()

    def _join_reader(self) -> None:
        if self._reader is not None:
            self._reader.join(timeout=_HELLO_TIMEOUT)
            if self._reader.is_alive():
                logger.warning("the stream reader thread did not end within %.0f s", _HELLO_TIMEOUT)

    def _run_loop(self) -> None:
        assert self._loop is not None
        asyncio.set_event_loop(self._loop)
        self._loop.call_soon(self._check_idle_stream)
        self._loop.run_forever()

    def _stop_loop(self) -> None:
        loop, thread = self._loop, self._loop_thread
        if loop is None or thread is None:
            return

        async def cancel_tasks() -> None:
            tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            loop.stop()

        loop.call_soon_threadsafe(lambda: loop.create_task(cancel_tasks()))
        thread.join(timeout=5.0)
        if not thread.is_alive():
            loop.close()

    # ------------------------------------------------------------ the stream

    def _read_stream(self) -> None:
        attempt = 0
        while not self._stopping.is_set():
            connected = self._connect_and_read()
            if self._stopping.is_set():
                break
            attempt = 1 if connected else attempt + 1
            delay = _backoff(attempt)
            logger.info(
                "reconnecting to the sidecar at %s (attempt %d) in %.2f s",
                self._settings.target,
                attempt,
                delay,
            )
            self._stopping.wait(delay)

    def _connect_and_read(self) -> bool:
        """Say Hello, open the stream and dispatch until it ends; return True if Hello succeeded."""
        assert self._stub is not None
        hello = self._stub.Hello.future(empty_pb2.Empty(), timeout=_HELLO_TIMEOUT, metadata=self._metadata)
        if not self._set_current_call(hello):
            return False
        try:
            hello.result()
        except (grpc.RpcError, grpc.FutureCancelledError) as exc:
            if not self._stopping.is_set():
                logger.warning(
                    "could not reach the sidecar at %s: %s; is one running there? "
                    "Start durable's with `durable sidecar --port PORT`",
                    self._settings.target,
                    describe_error(exc),
                )
            return False

        call = self._stub.GetWorkItems(self._work_items_request(), metadata=self._metadata)
        if not self._set_current_call(call):
            return True
        self._saw_health_ping = False
        self._last_message = time.monotonic()
        logger.info("connected to the sidecar at %s", self._settings.target)
        reason = "the sidecar closed the stream"
        try:
            for item in call:
                self._last_message = time.monotonic()
                self._dispatch(item)
        except grpc.RpcError as exc:
            reason = describe_error(exc)
            if exc.code() is grpc.StatusCode.RESOURCE_EXHAUSTED:
                reason += (
                    f"; a work item is larger than max_message_bytes ({self._settings.max_message_bytes}),"
                    " raise it on the worker"
                )
        finally:
            self._set_current_call(None)
        if not self._stopping.is_set():
            logger.info("disconnected from the sidecar at %s: %s", self._settings.target, reason)
        return True

    def _work_items_request(self) -> pb.GetWorkItemsRequest:
        request = pb.GetWorkItemsRequest(
            maxConcurrentOrchestrationWorkItems=self._max_orchestrations,
            maxConcurrentActivityWorkItems=self._max_activities,
        )
        if self._replay_cache is not None:
            # Lets a sidecar send only the history this worker has not seen yet.
            request.capabilities.append(pb.WORKER_CAPABILITY_HISTORY_STREAMING)
        if self._filter_work_items:
            filters = request.workItemFilters
            filters.orchestrations.extend(pb.OrchestrationFilter(name=name) for name in sorted(self._orchestrations))
            filters.activities.extend(pb.ActivityFilter(name=name) for name in sorted(self._activities))
            # Mark the message present even when the worker hosts nothing.
            filters.SetInParent()
        return request

    def _set_current_call(self, call: grpc.Future[Any] | grpc.CallIterator[pb.WorkItem] | None) -> bool:
        """Record the call stop() must cancel; return False (after cancelling it) if stopping."""
        with self._call_lock:
            self._current_call = call
            if call is not None and self._stopping.is_set():
                call.cancel()
                return False
            return True

    def _cancel_current_call(self) -> None:
        with self._call_lock:
            if self._current_call is not None:
                self._current_call.cancel()

    def _check_idle_stream(self) -> None:
        """Cancel a stream that was pinging and then went silent; runs every few seconds on the loop."""
        assert self._loop is not None
        if self._stopping.is_set():
            return
        silent_for = time.monotonic() - self._last_message
        if self._saw_health_ping and silent_for > self._idle_timeout:
            logger.warning(
                "no message from the sidecar at %s for %.0f s; reconnecting", self._settings.target, silent_for
            )
            self._saw_health_ping = False
            self._cancel_current_call()
        self._loop.call_later(min(5.0, self._idle_timeout / 4), self._check_idle_stream)

    def _dispatch(self, item: pb.WorkItem) -> None:
        kind = item.WhichOneof("request")
        if kind == "activityRequest":
            job = Job(JobKind.ACTIVITY, item)
            gate = self._activity_gate
        elif kind == "orchestratorRequest":
            job = Job(JobKind.ORCHESTRATION, item)
            gate = self._orchestration_gate
        elif kind == "healthPing":
            self._saw_health_ping = True
            return
        else:
            self._reject_entity_item(item, kind)
            return
        if not gate.submit(job):
            self._abandon(job, "the worker is stopping")

    def _reject_entity_item(self, item: pb.WorkItem, kind: str | None) -> None:
        assert self._stub is not None
        logger.warning("abandoning a %s work item: this worker hosts no entities", kind or "unknown")
        request = pb.AbandonEntityTaskRequest(completionToken=item.completionToken)
        future = self._stub.AbandonTaskEntityWorkItem.future(
            request, timeout=ABANDON_TIMEOUT, metadata=self._metadata
        )
        future.add_done_callback(functools.partial(log_abandon_failure, f"{kind} work item"))

    # ------------------------------------------------------------ running work items

    def _launch_orchestration(self, job: Job) -> None:
        assert self._orchestration_pool is not None
        self._orchestration_pool.submit(self._run_orchestration, job)

    def _launch_activity(self, job: Job) -> None:
        activity = self._runner.lookup(job.item.activityRequest)
        if activity is not None and activity.is_async:
            assert self._loop is not None
            self._loop.call_soon_threadsafe(self._start_async_activity, job, activity)
        else:
            assert self._activity_pool is not None
            self._activity_pool.submit(self._run_sync_activity, job, activity)

    def _run_orchestration(self, job: Job) -> None:
        try:
            request = job.item.orchestratorRequest
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug(
                    "orchestration work item for instance %s: %d past and %d new events",
                    request.instanceId,
                    len(request.pastEvents),
                    len(request.newEvents),
                )
            response = self._run_tail(request) if request.requiresHistoryStreaming else None
            if response is None:
                if request.requiresHistoryStreaming:
                    request = self._with_streamed_history(request)
                response = run_work_item(
                    self._orchestrations, request, cache=self._replay_cache, max_timer_interval=self._max_timer_interval
                )
            response.completionToken = job.token
            self._warn_unhosted_activities(request.instanceId, response)
        except BaseException:  # noqa: BLE001 - a runtime bug must not lose the work item
            logger.exception("the replay runtime failed on %s; abandoning it", job.describe())
            self._abandon(job, "the replay runtime raised", finish=True)
            return
        delay = self._hold_back_delay(request, response)
        if delay > 0 and self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.call_later, delay, self._deliver, job, response)
            return
        self._deliver(job, response)

    def _hold_back_delay(self, request: pb.OrchestratorRequest, response: pb.OrchestratorResponse) -> float:
        # NOTE: a sidecar dispatches the next work item of an instance only after
        # this completion, so holding it back lets results pile up in the
        # instance's inbox. Only a run that changed nothing is held back, for a
        # time that grows with the history the sidecar sends in every work item
        # (about what sending it again costs), up to `fan_in_delay` seconds.
        if (
            self._fan_in_delay <= 0
            or response.actions
            or self._replay_cache is None
            or self._replay_cache.waiting_tasks(request.instanceId) <= 1
        ):
            return 0.0
        return min(self._fan_in_delay, _HOLD_BACK_PER_EVENT * len(request.pastEvents))

    def _warn_unhosted_activities(self, instance_id: str, response: pb.OrchestratorResponse) -> None:
        # With work-item filters, an activity that no connected worker hosts waits
        # in the sidecar and nothing else reports it, so log it once per name.
        for action in response.actions:
            if not action.HasField("scheduleTask"):
                continue
            name = action.scheduleTask.name
            if name in self._activities or name in self._warned_activities:
                continue
            self._warned_activities.add(name)
            known = ", ".join(sorted(self._activities)) or "none"
            logger.warning(
                "instance %s scheduled activity %r, which this worker does not host (it hosts: %s); "
                "the activity waits until a worker that hosts it connects. Pass it to "
                "Worker(activities=[...]) if it should run here",
                instance_id,
                name,
                known,
            )

    def _run_tail(self, request: pb.OrchestratorRequest) -> pb.OrchestratorResponse | None:
        # durable's sidecar sends only the events after those this worker saw in
        # its last work item for the instance; the replay cache continues from there.
        offset = request.properties.get(PAST_EVENTS_OFFSET)
        if offset is None or self._replay_cache is None:
            return None
        result = self._replay_cache.run_tail(self._orchestrations, request, int(offset.number_value))
        return None if result is None else result.to_response(request.instanceId)

    def _with_streamed_history(self, request: pb.OrchestratorRequest) -> pb.OrchestratorRequest:
        assert self._stub is not None
        history = pb.StreamInstanceHistoryRequest(instanceId=request.instanceId, forWorkItemProcessing=True)
        if request.HasField("executionId"):
            history.executionId.CopyFrom(request.executionId)
        complete = pb.OrchestratorRequest()
        complete.CopyFrom(request)
        complete.requiresHistoryStreaming = False
        # Any events sent inline are only a tail of what the stream returns.
        del complete.pastEvents[:]
        if PAST_EVENTS_OFFSET in complete.properties:
            del complete.properties[PAST_EVENTS_OFFSET]
        for chunk in self._stub.StreamInstanceHistory(history, timeout=_HISTORY_TIMEOUT, metadata=self._metadata):
            complete.pastEvents.extend(chunk.events)
        return complete

    def _run_sync_activity(self, job: Job, activity: Activity[Any, Any] | None) -> None:
        try:
            request = job.item.activityRequest
            logger.debug("running %s", job.describe())
            response = self._runner.run_sync(activity, request, job.token)
        except BaseException:  # noqa: BLE001 - e.g. SystemExit from user code: give the item back
            logger.exception("%s raised outside its failure handling; abandoning it", job.describe())
            self._abandon(job, "the activity raised a BaseException", finish=True)
            return
        self._deliver(job, response)

    def _start_async_activity(self, job: Job, activity: Activity[Any, Any]) -> None:
        assert self._loop is not None
        job.task = self._loop.create_task(self._run_async_activity(job, activity))

    async def _run_async_activity(self, job: Job, activity: Activity[Any, Any]) -> None:
        logger.debug("running %s", job.describe())
        try:
            response = await self._runner.run_async(activity, job.item.activityRequest, job.token)
        except asyncio.CancelledError:
            # Only stop() cancels activity tasks, after abandoning their work items.
            self._finish(job)
            raise
        except BaseException:  # noqa: BLE001 - give the item back rather than lose it
            logger.exception("%s raised outside its failure handling; abandoning it", job.describe())
            self._abandon(job, "the activity raised a BaseException", finish=True)
            return
        self._deliver(job, response)

    # ------------------------------------------------------------ results

    def _deliver(self, job: Job, response: Response) -> None:
        assert self._delivery is not None
        self._delivery.send(job, response)

    def _abandon(self, job: Job, reason: str, *, finish: bool = False) -> None:
        if self._delivery is None:
            return
        self._delivery.abandon(job, reason, finish=finish)

    def _finish(self, job: Job) -> None:
        gate = self._activity_gate if job.kind is JobKind.ACTIVITY else self._orchestration_gate
        gate.release(job)


# Seconds of hold-back per past event in a work item; see `_hold_back_delay`.
# Measured on the official in-memory sidecar with a 10,000-activity fan-out,
# 3 µs left 100 or more work items and took 10 to 12 s. At 10 µs it took 14 to
# 26 work items and about 7 s, and the 1,000-activity fan-out was no slower.
_HOLD_BACK_PER_EVENT = 1e-5


def _backoff(attempt: int) -> float:
    """Exponential backoff with jitter for the reconnect `attempt` (1, 2, ...)."""
    ceiling = min(_RECONNECT_CAP, _RECONNECT_BASE * 2.0 ** min(attempt - 1, 16))
    return ceiling * random.uniform(0.5, 1.0)


def _orchestrations_by_name(
    orchestrations: Iterable[type[Orchestration[Any, Any]]],
) -> dict[str, type[Orchestration[Any, Any]]]:
    by_name: dict[str, type[Orchestration[Any, Any]]] = {}
    for cls in orchestrations:
        if not isinstance(cls, type) or not issubclass(cls, Orchestration) or not hasattr(cls, "__durable_machine__"):
            raise TypeError(f"orchestrations must be Orchestration subclasses, got {cls!r}")
        name = cls.__durable_name__
        other = by_name.get(name)
        if other is not None and other is not cls:
            raise ValueError(
                f"two orchestration classes are registered as {name!r}: "
                f"{other.__qualname__} and {cls.__qualname__}; give one a different name="
            )
        by_name[name] = cls
    return by_name


def _activities_by_name(activities: Iterable[Activity[Any, Any]]) -> dict[str, Activity[Any, Any]]:
    by_name: dict[str, Activity[Any, Any]] = {}
    for activity in activities:
        if not isinstance(activity, Activity):
            raise TypeError(f"activities must be decorated with @durable.activity, got {activity!r}")
        other = by_name.get(activity.name)
        if other is not None and other is not activity:
            raise ValueError(
                f"two activities are registered as {activity.name!r}: {other.fn.__qualname__} "
                f"and {activity.fn.__qualname__}; pass name= to @activity for one of them"
            )
        by_name[activity.name] = activity
    return by_name
