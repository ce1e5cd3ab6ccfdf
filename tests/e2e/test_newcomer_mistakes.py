"""Each mistake a newcomer is likely to make gets a message that explains what to do."""

from __future__ import annotations

import logging
import socket
import time

import pytest

import durable
from durable.errors import OrchestrationFailedError, PayloadError

from .conftest import WorkerFactory


@durable.activity
def double(ctx: durable.ActivityContext, value: int) -> int:
    return value * 2


class Doubler(durable.Orchestration[int, int]):
    async def run(self, value: int) -> int:
        return await self.call_activity(double, value)


class ForgetsAwait(durable.Orchestration[int, int]):
    async def run(self, value: int) -> int:
        return self.call_activity(double, value)  # type: ignore[return-value]


class NobodyHostsMe(durable.Orchestration[int, int]):
    async def run(self, value: int) -> int:
        return value


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_client_without_sidecar_says_how_to_start_one() -> None:
    address = f"127.0.0.1:{_closed_port()}"
    with durable.Client(address) as client, pytest.raises(ConnectionError) as caught:
        client.start(Doubler, 1)
    message = str(caught.value)
    assert address in message
    assert "durable sidecar" in message


def test_worker_without_sidecar_logs_how_to_start_one(caplog: pytest.LogCaptureFixture) -> None:
    address = f"127.0.0.1:{_closed_port()}"
    with caplog.at_level(logging.WARNING, logger="durable"):
        worker = durable.Worker(address, orchestrations=[Doubler], activities=[double])
        worker.start()
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not any("durable sidecar" in r.getMessage() for r in caplog.records):
                time.sleep(0.1)
        finally:
            worker.stop(timeout=5)
    messages = [r.getMessage() for r in caplog.records if "could not reach" in r.getMessage()]
    assert messages, "the worker logged nothing about the missing sidecar"
    assert address in messages[0]
    assert "durable sidecar" in messages[0]


def test_unhosted_class_times_out_with_a_hint(make_worker: WorkerFactory, client: durable.Client) -> None:
    make_worker(orchestrations=[Doubler], activities=[double])
    handle = client.start(NobodyHostsMe, 1)
    with pytest.raises(TimeoutError) as caught:
        handle.result(timeout=1)
    message = str(caught.value)
    assert handle.instance_id in message
    assert "PENDING" in message
    assert "Worker(orchestrations=[...])" in message
    client.terminate(handle.instance_id)


def test_non_json_input_names_the_type(client: durable.Client) -> None:
    with pytest.raises(PayloadError) as caught:
        client.start(Doubler, object())  # type: ignore[arg-type]
    assert "object" in str(caught.value)
    assert "JSON" in str(caught.value)


def test_orchestration_method_outside_a_worker() -> None:
    with pytest.raises(RuntimeError, match="not running inside a worker"):
        Doubler().call_activity(double, 1)


def test_forgotten_await_fails_with_hint(make_worker: WorkerFactory, client: durable.Client) -> None:
    make_worker(orchestrations=[ForgetsAwait], activities=[double])
    handle = client.start(ForgetsAwait, 1)
    with pytest.raises(OrchestrationFailedError) as caught:
        handle.result(timeout=30)
    assert "did you forget `await`" in str(caught.value)


class CallsUnhosted(durable.Orchestration[int, int]):
    async def run(self, value: int) -> int:
        return await self.call_activity(double, value)


def test_unhosted_activity_is_logged_by_name(
    make_worker: WorkerFactory, client: durable.Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="durable"):
        make_worker(orchestrations=[CallsUnhosted])
        handle = client.start(CallsUnhosted, 1)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any("'double'" in r.getMessage() for r in caplog.records):
            time.sleep(0.05)
    messages = [r.getMessage() for r in caplog.records if "'double'" in r.getMessage()]
    assert messages, "the worker logged nothing about the unhosted activity"
    assert handle.instance_id in messages[0]
    assert "Worker(activities=[...])" in messages[0]
    client.terminate(handle.instance_id)


def test_event_payload_of_wrong_type_is_rejected(make_worker: WorkerFactory, client: durable.Client) -> None:
    class Approves(durable.Orchestration[None, bool]):
        approval: durable.Event[bool] = durable.Event("approval")

        async def run(self, value: None) -> bool:
            return await self.approval.wait()

    handle = client.start(Approves, None)
    with pytest.raises(PayloadError, match="expected a value of type bool"):
        handle.raise_event(Approves.approval, "reject")  # type: ignore[arg-type]
    client.terminate(handle.instance_id)
