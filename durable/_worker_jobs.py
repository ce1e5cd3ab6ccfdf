"""Work items in flight inside the worker, and the gates that bound them.

A `Job` follows one work item from the stream to its completion (or abandon)
call. A `Gate` admits at most `limit` jobs of one kind at a time and queues the
rest in arrival order. The limits therefore hold even on sidecars that ignore
the concurrency hints in `GetWorkItemsRequest`, such as the official in-memory
sidecar and the Go sidecar.
"""

from __future__ import annotations

import asyncio
import enum
import threading
import time
from collections import deque
from collections.abc import Callable

from durable._proto import orchestrator_service_pb2 as pb

__all__ = ["JobKind", "Job", "Gate"]


class JobKind(enum.Enum):
    """The kind of work item a job carries."""

    ORCHESTRATION = "orchestration"
    ACTIVITY = "activity"


class Job:
    """One work item from receipt to its completion or abandon call."""

    __slots__ = ("kind", "item", "token", "instance_id", "task_id", "name", "abandoned", "task", "delivery_attempts", "first_failure")

    def __init__(self, kind: JobKind, item: pb.WorkItem) -> None:
        self.kind = kind
        self.item = item
        self.token = item.completionToken
        if kind is JobKind.ACTIVITY:
            request = item.activityRequest
            self.instance_id = request.orchestrationInstance.instanceId
            self.task_id = request.taskId
            self.name = request.name
        else:
            self.instance_id = item.orchestratorRequest.instanceId
            self.task_id = -1
            self.name = ""
        # Set when the worker gave the item back to the sidecar; a result that
        # arrives afterwards is discarded, because the item will be redelivered.
        self.abandoned = False
        # The asyncio task running an `async def` activity, so stop() can cancel it.
        self.task: asyncio.Task[None] | None = None
        self.delivery_attempts = 0
        self.first_failure: float | None = None

    def describe(self) -> str:
        """Name the work item for log messages: kind, instance id and, for activities, name and task id."""
        if self.kind is JobKind.ACTIVITY:
            return f"activity {self.name!r} (task {self.task_id}) of instance {self.instance_id!r}"
        return f"orchestration work item for instance {self.instance_id!r}"

    def note_delivery_failure(self) -> float:
        """Count a failed completion call; return the seconds since the first failure."""
        now = time.monotonic()
        self.delivery_attempts += 1
        if self.first_failure is None:
            self.first_failure = now
        return now - self.first_failure


class Gate:
    """Run at most `limit` jobs at once; queue the rest in arrival order.

    `launch` starts a job without blocking (it submits to a thread pool or to
    the event loop). `submit` is called by the stream reader, `release` by
    whichever thread finishes a job. After `close` nothing new is admitted.
    """

    def __init__(self, limit: int, launch: Callable[[Job], None]) -> None:
        self.limit = limit
        self._launch = launch
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._waiting: deque[Job] = deque()
        self._running: set[Job] = set()
        self._closed = False

    def submit(self, job: Job) -> bool:
        """Start `job` now or queue it; return False if the gate is closed."""
        with self._lock:
            if self._closed:
                return False
            if len(self._running) >= self.limit:
                self._waiting.append(job)
                return True
            self._running.add(job)
        self._launch(job)
        return True

    def release(self, job: Job) -> None:
        """Mark `job` finished and start the oldest queued job, if any."""
        with self._lock:
            self._running.discard(job)
            following = None
            if self._waiting and not self._closed:
                following = self._waiting.popleft()
                self._running.add(following)
            if not self._running:
                self._idle.notify_all()
        if following is not None:
            self._launch(following)

    def close(self) -> list[Job]:
        """Stop admitting jobs and return the queued ones that never started."""
        with self._lock:
            self._closed = True
            waiting = list(self._waiting)
            self._waiting.clear()
            return waiting

    def wait_idle(self, deadline: float) -> bool:
        """Wait until no job runs or `deadline` (a `time.monotonic()` value) passes."""
        with self._lock:
            while self._running:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
            return True

    def running(self) -> list[Job]:
        """Return the jobs started and not yet finished."""
        with self._lock:
            return list(self._running)
