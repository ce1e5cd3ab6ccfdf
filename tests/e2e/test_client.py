"""The client end to end: state, waits, control calls, listing, purge, restart, custom status, steps."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

import durable
from durable.errors import OrchestrationFailedError

from .conftest import SidecarUnderTest, WorkerFactory, requires_embedded

_runs_lock = threading.Lock()
_runs: dict[str, int] = {}
_in_flight = threading.Semaphore(0)


@durable.activity
def slow_once(ctx: durable.ActivityContext, key: str) -> str:
    """Count the call, signal that it started, and take a moment."""
    with _runs_lock:
        _runs[key] = _runs.get(key, 0) + 1
    _in_flight.release()
    time.sleep(0.5)
    return key


@durable.activity
def echo(ctx: durable.ActivityContext, value: str) -> str:
    return value


class CtlWaiter(durable.Orchestration[str, str]):
    async def run(self, subject: str) -> str:
        value = await self.wait_for_event("go", str)
        return f"{subject}:{value}"


class CtlQuick(durable.Orchestration[int, int]):
    async def run(self, value: int) -> int:
        return value + 1


class CtlParent(durable.Orchestration[str, str]):
    async def run(self, subject: str) -> str:
        return await self.call_sub_orchestration(CtlWaiter, subject, instance_id=f"{self.instance_id}-child")


class CtlQuickParent(durable.Orchestration[int, int]):
    async def run(self, value: int) -> int:
        return await self.call_sub_orchestration(CtlQuick, value, instance_id=f"{self.instance_id}-child")


class CtlSuspendable(durable.Orchestration[str, list[str]]):
    async def run(self, prefix: str) -> list[str]:
        keys = [f"{prefix}-{i}" for i in range(3)]
        return await durable.when_all([self.call_activity(slow_once, key) for key in keys])


class CtlStatus(durable.Orchestration[int, dict[str, int]]):
    async def run(self, stage: int) -> dict[str, int]:
        self.set_custom_status({"stage": stage})
        await self.wait_for_event("next", None)
        self.set_custom_status({"stage": stage + 1})
        await self.wait_for_event("next", None)
        return {"stage": stage + 1}


class CtlSteps(durable.Orchestration[str, str]):
    @durable.step(start=True)
    async def submit(self, claim: str) -> durable.Goto:
        await self.call_activity(echo, claim)
        return self.goto(self.wait_for_decision, claim)

    @durable.step
    async def wait_for_decision(self, claim: str) -> durable.Goto:
        decision = await self.wait_for_event("decision", str)
        return self.goto(self.record, f"{claim}={decision}")

    @durable.step
    async def record(self, outcome: str) -> str:
        return await self.call_activity(echo, outcome)


class CtlCounter(durable.Orchestration[int, int]):
    """Add each `add` event to the total, one execution per event, until `target` is reached."""

    async def run(self, total: int) -> int:
        if total >= 30:
            return total
        total += await self.wait_for_event("add", int)
        self.continue_as_new(total)


CLIENT_ORCHESTRATIONS: list[type[durable.Orchestration[Any, Any]]] = [
    CtlWaiter, CtlQuick, CtlParent, CtlQuickParent, CtlSuspendable, CtlStatus, CtlSteps, CtlCounter,
]  # fmt: skip


@pytest.fixture
def worker(make_worker: WorkerFactory) -> durable.Worker:
    return make_worker(orchestrations=CLIENT_ORCHESTRATIONS, activities=[slow_once, echo])


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _wait_for_status(
    client: durable.Client, instance_id: str, status: durable.OrchestrationStatus, timeout: float = 15.0
) -> durable.OrchestrationState:
    deadline = time.monotonic() + timeout
    while True:
        state = client.get_state(instance_id)
        if state is not None and state.status is status:
            return state
        if time.monotonic() > deadline:
            raise AssertionError(f"{instance_id} is {state.status if state else None}, expected {status}")
        time.sleep(0.05)


# ------------------------------------------------------------------ state and waits


def test_get_state_of_unknown_instance_is_none(client: durable.Client) -> None:
    assert client.get_state(_unique("missing")) is None


@pytest.mark.parametrize("action", ["raise_event", "terminate", "suspend", "resume", "restart"])
def test_control_of_unknown_instance_names_it(client: durable.Client, action: str) -> None:
    instance_id = _unique("missing")
    calls = {
        "raise_event": lambda: client.raise_event(instance_id, "go", "x"),
        "terminate": lambda: client.terminate(instance_id),
        "suspend": lambda: client.suspend(instance_id),
        "resume": lambda: client.resume(instance_id),
        "restart": lambda: client.restart(instance_id),
    }

    with pytest.raises(durable.InstanceNotFoundError) as raised:
        calls[action]()

    assert raised.value.instance_id == instance_id
    assert instance_id in str(raised.value)


def test_state_fields_and_typed_payloads(worker: durable.Worker, client: durable.Client) -> None:
    handle = client.start(CtlWaiter, "order-1", instance_id=_unique("state"))
    handle.raise_event("go", "shipped")
    handle.result(timeout=30)

    state = handle.state()

    assert state is not None
    assert state.instance_id == handle.instance_id
    assert state.name == "CtlWaiter"
    assert state.status is durable.OrchestrationStatus.COMPLETED
    assert state.is_terminal
    assert state.input == "order-1"
    assert state.raw_input == '"order-1"'
    assert state.output == "order-1:shipped"
    assert state.raw_output == '"order-1:shipped"'
    assert state.failure_details is None
    assert state.created_at is not None and state.created_at.tzinfo is not None
    assert state.last_updated_at is not None


def test_wait_for_start_timeout_names_instance(client: durable.Client) -> None:
    # No worker hosts this name on this sidecar, so the instance stays PENDING.
    handle = client.start("NobodyHostsThis", 1, instance_id=_unique("pending"))

    started = time.monotonic()
    with pytest.raises(TimeoutError) as raised:
        handle.wait_for_start(timeout=0.5)

    assert time.monotonic() - started < 10
    assert handle.instance_id in str(raised.value)
    assert "0.5 s" in str(raised.value)


def test_wait_for_completion_timeout_names_instance(worker: durable.Worker, client: durable.Client) -> None:
    handle = client.start(CtlWaiter, "never", instance_id=_unique("slow"))

    with pytest.raises(TimeoutError) as raised:
        handle.result(timeout=0.5)

    assert handle.instance_id in str(raised.value)
    assert "RUNNING" in str(raised.value)
    client.terminate(handle.instance_id)


def test_start_existing_id_raises(worker: durable.Worker, client: durable.Client) -> None:
    instance_id = _unique("dup")
    client.start(CtlQuick, 1, instance_id=instance_id).result(timeout=30)

    with pytest.raises(durable.InstanceExistsError) as raised:
        client.start(CtlQuick, 2, instance_id=instance_id)

    assert instance_id in str(raised.value)


def test_get_handle_is_typed_by_class(worker: durable.Worker, client: durable.Client) -> None:
    instance_id = client.start(CtlQuick, 41).instance_id

    handle = client.get_handle(instance_id, CtlQuick)

    assert handle.result(timeout=30) == 42


def test_start_by_name_and_untyped_result(worker: durable.Worker, client: durable.Client) -> None:
    handle = client.start("CtlQuick", 9)

    assert handle.result(timeout=30) == 10


def test_scheduled_start_runs_after_its_time(worker: durable.Worker, client: durable.Client) -> None:
    start_at = datetime.now(timezone.utc) + timedelta(milliseconds=300)

    handle = client.start(CtlQuick, 1, start_at=start_at)

    assert handle.result(timeout=30) == 2


# ------------------------------------------------------------------ suspend, resume, terminate


def test_suspend_with_activities_in_flight_then_resume(worker: durable.Worker, client: durable.Client) -> None:
    prefix = _unique("susp")
    handle = client.start(CtlSuspendable, prefix)
    for _ in range(3):
        assert _in_flight.acquire(timeout=15), "the activities did not start"

    handle.suspend("maintenance")
    _wait_for_status(client, handle.instance_id, durable.OrchestrationStatus.SUSPENDED)
    time.sleep(0.8)  # the activities finish while the instance is suspended
    state = client.get_state(handle.instance_id)
    assert state is not None and state.status is durable.OrchestrationStatus.SUSPENDED

    handle.resume("done")

    assert handle.result(timeout=30) == [f"{prefix}-{i}" for i in range(3)]
    assert [_runs[f"{prefix}-{i}"] for i in range(3)] == [1, 1, 1]


def test_terminate_suspended_instance(worker: durable.Worker, client: durable.Client) -> None:
    handle = client.start(CtlWaiter, "t", instance_id=_unique("term-susp"))
    handle.wait_for_start(timeout=15)
    handle.suspend()
    _wait_for_status(client, handle.instance_id, durable.OrchestrationStatus.SUSPENDED)

    handle.terminate("stopped by test")
    state = handle.wait(timeout=15)

    assert state.status is durable.OrchestrationStatus.TERMINATED
    assert state.output == "stopped by test"
    with pytest.raises(OrchestrationFailedError) as raised:
        handle.result(timeout=5)
    assert "terminated" in str(raised.value)


def test_recursive_terminate_reaches_child(
    worker: durable.Worker, client: durable.Client, sidecar: SidecarUnderTest
) -> None:
    if sidecar.kind == "official":
        pytest.skip("the official in-memory sidecar ignores recursive terminate")
    parent = client.start(CtlParent, "p", instance_id=_unique("rterm"))
    child_id = f"{parent.instance_id}-child"
    _wait_for_status(client, child_id, durable.OrchestrationStatus.RUNNING)

    parent.terminate(recursive=True)

    assert parent.wait(timeout=15).status is durable.OrchestrationStatus.TERMINATED
    assert client.wait_for_completion(child_id, timeout=15).status is durable.OrchestrationStatus.TERMINATED


def test_recursive_purge_deletes_children(
    worker: durable.Worker, client: durable.Client, sidecar: SidecarUnderTest
) -> None:
    parent = client.start(CtlQuickParent, 1, instance_id=_unique("rpurge"))
    assert parent.result(timeout=30) == 2
    child_id = f"{parent.instance_id}-child"

    deleted = client.purge(parent.instance_id, recursive=True)

    assert client.get_state(parent.instance_id) is None
    if sidecar.kind == "official":
        assert deleted == 1  # the official in-memory sidecar ignores recursive purge
        return
    assert deleted == 2
    assert client.get_state(child_id) is None


def test_purge_of_running_instance_deletes_nothing(worker: durable.Worker, client: durable.Client) -> None:
    handle = client.start(CtlWaiter, "keep", instance_id=_unique("purge-running"))
    handle.wait_for_start(timeout=15)

    # The embedded sidecar rejects the purge; the official one deletes nothing.
    try:
        assert client.purge(handle.instance_id) == 0
    except ValueError as exc:
        assert "RUNNING" in str(exc)
        assert handle.instance_id in str(exc)
    assert client.get_state(handle.instance_id) is not None
    handle.terminate()


def test_purge_where_filters_by_time_and_status(worker: durable.Worker, client: durable.Client) -> None:
    before = datetime.now(timezone.utc) - timedelta(milliseconds=1)
    handles = [client.start(CtlQuick, i, instance_id=_unique("pw")) for i in range(3)]
    for handle in handles:
        handle.result(timeout=30)
    after = datetime.now(timezone.utc) + timedelta(seconds=1)

    deleted = client.purge_where(
        created_from=before, created_to=after, statuses=[durable.OrchestrationStatus.COMPLETED]
    )

    assert deleted >= 3
    assert all(client.get_state(handle.instance_id) is None for handle in handles)


def test_restart_runs_again_with_original_input(worker: durable.Worker, client: durable.Client) -> None:
    handle = client.start(CtlQuick, 5, instance_id=_unique("restart"))
    assert handle.result(timeout=30) == 6

    new_id = client.restart(handle.instance_id, new_instance_id=True)

    assert new_id != handle.instance_id
    assert client.get_handle(new_id, CtlQuick).result(timeout=30) == 6


# ------------------------------------------------------------------ listing


def test_query_iterates_every_page(worker: durable.Worker, client: durable.Client) -> None:
    prefix = _unique("query")
    ids = {client.start(CtlQuick, i, instance_id=f"{prefix}-{i:02d}").instance_id for i in range(7)}
    for instance_id in ids:
        client.wait_for_completion(instance_id, timeout=30)

    found = list(client.query(instance_id_prefix=prefix, page_size=3, fetch_payloads=True))

    assert {state.instance_id for state in found} == ids
    assert len(found) == len(ids)
    assert all(state.status is durable.OrchestrationStatus.COMPLETED for state in found)
    assert sorted(state.output for state in found) == list(range(1, 8))


def test_query_filters_by_status(worker: durable.Worker, client: durable.Client) -> None:
    prefix = _unique("qstatus")
    running = client.start(CtlWaiter, "r", instance_id=f"{prefix}-running")
    done = client.start(CtlQuick, 1, instance_id=f"{prefix}-done")
    done.result(timeout=30)
    running.wait_for_start(timeout=15)

    found = list(
        client.query(instance_id_prefix=prefix, statuses=[durable.OrchestrationStatus.RUNNING], page_size=10)
    )

    assert [state.instance_id for state in found] == [running.instance_id]
    running.terminate()


# ------------------------------------------------------------------ custom status and steps


def test_custom_status_is_the_users_json(worker: durable.Worker, client: durable.Client) -> None:
    handle = client.start(CtlStatus, 1)
    handle.wait_for_start(timeout=15)
    deadline = time.monotonic() + 15
    state = handle.state()
    while state is not None and state.raw_custom_status is None and time.monotonic() < deadline:
        time.sleep(0.05)
        state = handle.state()

    assert state is not None
    assert state.custom_status == {"stage": 1}
    assert state.raw_custom_status == '{"stage":1}'

    handle.raise_event("next")
    deadline = time.monotonic() + 15
    while state is not None and state.custom_status != {"stage": 2} and time.monotonic() < deadline:
        time.sleep(0.05)
        state = handle.state()
    assert state is not None and state.custom_status == {"stage": 2}
    handle.raise_event("next")
    assert handle.result(timeout=30) == {"stage": 2}


def test_current_step_follows_the_machine(worker: durable.Worker, client: durable.Client) -> None:
    handle = client.start(CtlSteps, "claim-9")
    deadline = time.monotonic() + 15
    step = None
    while step != "wait_for_decision" and time.monotonic() < deadline:
        state = handle.state()
        step = state.current_step if state is not None else None
        time.sleep(0.05)
    assert step == "wait_for_decision"

    state = handle.state()
    assert state is not None
    assert state.custom_status is None  # the step is not written into custom status

    handle.raise_event("decision", "approved")
    assert handle.result(timeout=30) == "claim-9=approved"
    final = handle.state()
    assert final is not None and final.current_step == "record"


def test_continue_as_new_under_event_burst(worker: durable.Worker, client: durable.Client) -> None:
    handle = client.start(CtlCounter, 0)
    for _ in range(30):
        handle.raise_event("add", 1)

    assert handle.result(timeout=60) == 30
    state = handle.state()
    assert state is not None and state.status is durable.OrchestrationStatus.COMPLETED


def test_embedded_sidecar_reports_completion_time(
    worker: durable.Worker, client: durable.Client, sidecar: SidecarUnderTest
) -> None:
    requires_embedded(sidecar, "completion timestamps are optional in the protocol")
    handle = client.start(CtlQuick, 1)
    handle.result(timeout=30)

    state = handle.state()

    assert state is not None and state.completed_at is not None
