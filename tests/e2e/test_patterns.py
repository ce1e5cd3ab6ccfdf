"""Orchestration patterns end to end: chaining, fan-out, timers, events, children, retries."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import grpc
import pytest

import durable
from durable._proto import orchestrator_service_pb2 as pb
from durable._proto import orchestrator_service_pb2_grpc as pb_grpc
from durable.errors import OrchestrationFailedError, TaskFailedError

from .conftest import SidecarUnderTest, WorkerFactory

# ------------------------------------------------------------------ activities


@durable.activity
def greet(ctx: durable.ActivityContext, name: str) -> str:
    return f"Hello {name}!"


@durable.activity
async def shout(ctx: durable.ActivityContext, text: str) -> str:
    return text.upper()


@durable.activity
def square(ctx: durable.ActivityContext, value: int) -> int:
    return value * value


_flaky_lock = threading.Lock()
_flaky_attempts: dict[str, int] = {}


@durable.activity
def flaky(ctx: durable.ActivityContext, key: str) -> str:
    """Fail the first two calls for a key, then succeed."""
    with _flaky_lock:
        _flaky_attempts[key] = _flaky_attempts.get(key, 0) + 1
        attempt = _flaky_attempts[key]
    if attempt < 3:
        raise ConnectionError(f"attempt {attempt} for {key} failed")
    return f"{key} ok after {attempt}"


# ------------------------------------------------------------------ orchestrations


class E2EChain(durable.Orchestration[list[str], list[str]]):
    async def run(self, names: list[str]) -> list[str]:
        out = []
        for name in names:
            greeting = await self.call_activity(greet, name)
            out.append(await self.call_activity(shout, greeting))
        return out


class E2EFanOut(durable.Orchestration[int, int]):
    async def run(self, count: int) -> int:
        results = await durable.when_all([self.call_activity(square, i) for i in range(count)])
        return sum(results)


class E2ETimer(durable.Orchestration[float, float]):
    async def run(self, seconds: float) -> float:
        started = self.now()
        await self.create_timer(timedelta(seconds=seconds))
        return (self.now() - started).total_seconds()


class E2EEvents(durable.Orchestration[int, list[int]]):
    async def run(self, count: int) -> list[int]:
        return [await self.wait_for_event("item", int) for _ in range(count)]


class E2EApproval(durable.Orchestration[str, str]):
    approval: durable.Event[bool] = durable.Event("approval")

    async def run(self, subject: str) -> str:
        approved = await self.approval.wait()
        return f"{subject}: {'approved' if approved else 'rejected'}"


class E2EFailingChild(durable.Orchestration[int, int]):
    async def run(self, value: int) -> int:
        raise ValueError(f"bad child {value}")


class E2EParentCatches(durable.Orchestration[int, str]):
    async def run(self, value: int) -> str:
        try:
            await self.call_sub_orchestration(E2EFailingChild, value)
        except TaskFailedError as exc:
            messages = " | ".join(detail.message for detail in exc.details.chain())
            return f"caught: {messages}"
        return "no failure"


class E2EParentFails(durable.Orchestration[int, int]):
    async def run(self, value: int) -> int:
        return await self.call_sub_orchestration(E2EFailingChild, value)


class E2EDoubleChild(durable.Orchestration[int, int]):
    async def run(self, value: int) -> int:
        return await self.call_activity(square, value)


class E2EParentSums(durable.Orchestration[int, int]):
    async def run(self, count: int) -> int:
        children = [self.call_sub_orchestration(E2EDoubleChild, i) for i in range(count)]
        return sum(await durable.when_all(children))


class E2ERetry(durable.Orchestration[str, str]):
    async def run(self, key: str) -> str:
        policy = durable.RetryPolicy(first_interval=timedelta(milliseconds=100), max_attempts=3)
        return await self.call_activity(flaky, key, retry=policy)


class E2ERetryGivesUp(durable.Orchestration[str, str]):
    async def run(self, key: str) -> str:
        policy = durable.RetryPolicy(first_interval=timedelta(milliseconds=100), max_attempts=2)
        return await self.call_activity(flaky, key, retry=policy)


PATTERN_ORCHESTRATIONS: list[type[durable.Orchestration[Any, Any]]] = [
    E2EChain, E2EFanOut, E2ETimer, E2EEvents, E2EApproval, E2EFailingChild, E2EParentCatches,
    E2EParentFails, E2EDoubleChild, E2EParentSums, E2ERetry, E2ERetryGivesUp,
]  # fmt: skip
PATTERN_ACTIVITIES = [greet, shout, square, flaky]


@pytest.fixture
def worker(make_worker: WorkerFactory) -> durable.Worker:
    return make_worker(orchestrations=PATTERN_ORCHESTRATIONS, activities=PATTERN_ACTIVITIES)


# ------------------------------------------------------------------ tests


def test_chaining_sync_and_async_activities(worker: durable.Worker, client: durable.Client) -> None:
    handle = client.start(E2EChain, ["Tokyo", "London", "Lima"])

    result = handle.result(timeout=30)

    assert result == ["HELLO TOKYO!", "HELLO LONDON!", "HELLO LIMA!"]


def test_fan_out_fan_in_1000(worker: durable.Worker, client: durable.Client) -> None:
    handle = client.start(E2EFanOut, 1000)

    assert handle.result(timeout=120) == sum(i * i for i in range(1000))


def test_timer_waits_its_delay(worker: durable.Worker, client: durable.Client) -> None:
    started = time.monotonic()

    elapsed_in_orchestration = client.start(E2ETimer, 0.5).result(timeout=30)

    assert elapsed_in_orchestration >= 0.5
    assert time.monotonic() - started >= 0.5


def test_event_raised_right_after_start(worker: durable.Worker, client: durable.Client) -> None:
    handle = client.start(E2EEvents, 1)
    handle.raise_event("item", 42)

    assert handle.result(timeout=30) == [42]


def test_three_events_of_one_name_in_order(worker: durable.Worker, client: durable.Client) -> None:
    handle = client.start(E2EEvents, 3)
    for value in (1, 2, 3):
        client.raise_event(handle.instance_id, "item", value)

    assert handle.result(timeout=30) == [1, 2, 3]


def test_event_names_match_case_insensitively(worker: durable.Worker, client: durable.Client) -> None:
    handle = client.start(E2EEvents, 1)
    handle.raise_event("ITEM", 7)

    assert handle.result(timeout=30) == [7]


def test_event_raised_before_worker_starts(make_worker: WorkerFactory, client: durable.Client) -> None:
    handle = client.start(E2EApproval, "expense 12")
    handle.raise_event(E2EApproval.approval, True)

    make_worker(orchestrations=[E2EApproval])

    assert handle.result(timeout=30) == "expense 12: approved"


def test_failing_child_details_reach_parent(worker: durable.Worker, client: durable.Client) -> None:
    caught = client.start(E2EParentCatches, 7).result(timeout=30)

    assert caught.startswith("caught: ")
    assert "bad child 7" in caught


def test_uncaught_child_failure_fails_parent(worker: durable.Worker, client: durable.Client) -> None:
    handle = client.start(E2EParentFails, 8)

    with pytest.raises(OrchestrationFailedError) as raised:
        handle.result(timeout=30)

    details = raised.value.details
    assert details is not None
    assert details.error_type == "durable.errors.TaskFailedError"
    assert any("bad child 8" in detail.message for detail in details.chain())


def test_sub_orchestrations_fan_out(worker: durable.Worker, client: durable.Client) -> None:
    assert client.start(E2EParentSums, 5).result(timeout=60) == sum(i * i for i in range(5))


def test_retry_succeeds_on_third_attempt(worker: durable.Worker, client: durable.Client) -> None:
    key = f"retry-{time.monotonic_ns()}"

    assert client.start(E2ERetry, key).result(timeout=30) == f"{key} ok after 3"
    assert _flaky_attempts[key] == 3


def test_retry_gives_up_after_max_attempts(worker: durable.Worker, client: durable.Client) -> None:
    key = f"give-up-{time.monotonic_ns()}"
    handle = client.start(E2ERetryGivesUp, key)

    with pytest.raises(OrchestrationFailedError) as raised:
        handle.result(timeout=30)

    assert _flaky_attempts[key] == 2
    details = raised.value.details
    assert details is not None
    assert any("attempt 2 for" in detail.message for detail in details.chain())


def test_failed_orchestration_state_has_details(worker: durable.Worker, client: durable.Client) -> None:
    handle = client.start(E2EFailingChild, 3)
    with pytest.raises(OrchestrationFailedError):
        handle.result(timeout=30)

    state = handle.state()

    assert state is not None
    assert state.status is durable.OrchestrationStatus.FAILED
    assert state.failure_details is not None
    assert state.failure_details.error_type == "builtins.ValueError"
    assert state.failure_details.message == "bad child 3"



def test_long_timer_is_split_by_worker_option(
    make_worker: WorkerFactory, client: durable.Client, sidecar: SidecarUnderTest
) -> None:
    make_worker(orchestrations=[E2ETimer], max_timer_interval=timedelta(milliseconds=200))
    handle = client.start(E2ETimer, 0.7)

    assert handle.result(timeout=30) >= 0.7
    with grpc.insecure_channel(sidecar.address) as channel:
        stub = pb_grpc.TaskHubSidecarServiceStub(channel)
        request = pb.StreamInstanceHistoryRequest(instanceId=handle.instance_id)
        events = [event for chunk in stub.StreamInstanceHistory(request, timeout=10) for event in chunk.events]
    # 0.7 s in chunks of at most 0.2 s: 0.2 + 0.2 + 0.2 + 0.1.
    assert sum(1 for event in events if event.HasField("timerCreated")) == 4


def test_new_worker_continues_an_instance(make_worker: WorkerFactory, client: durable.Client) -> None:
    # The second worker has never seen the instance, so it cannot continue from
    # a cached replay and must read the whole history.
    first = make_worker(orchestrations=[E2EEvents])
    handle = client.start(E2EEvents, 2)
    handle.raise_event("item", 1)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        state = handle.state()
        if state is not None and state.status is durable.OrchestrationStatus.RUNNING:
            break
        time.sleep(0.05)
    time.sleep(0.3)
    first.stop(timeout=10)

    make_worker(orchestrations=[E2EEvents])
    handle.raise_event("item", 2)

    assert handle.result(timeout=30) == [1, 2]
