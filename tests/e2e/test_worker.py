"""The worker end to end: limits, unknown names, reconnects, shutdown, payload size, TLS and metadata."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

import durable
from durable.errors import OrchestrationFailedError, PayloadError
from durable.sidecar import Sidecar
from tests.peer import launch

from .conftest import SIDECAR_MAX_MESSAGE_BYTES, SidecarUnderTest, WorkerFactory, requires_embedded, worker_threads
from .proxy import GrpcProxy

# ------------------------------------------------------------------ overlap measurement


class Overlap:
    """Counts activities running at once; each waits until `target` run together or `patience` passes."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self.running = 0
        self.peak = 0
        self.target = 0
        self.patience = 0.0

    def reset(self, target: int, patience: float) -> None:
        with self._lock:
            self.running = self.peak = 0
            self.target, self.patience = target, patience

    def enter(self) -> None:
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
            self._lock.notify_all()

    def wait_for_peers(self) -> None:
        deadline = time.monotonic() + self.patience
        with self._lock:
            while self.running < self.target and (remaining := deadline - time.monotonic()) > 0:
                self._lock.wait(remaining)

    def leave(self) -> None:
        with self._lock:
            self.running -= 1


overlap = Overlap()


@durable.activity
def crowded(ctx: durable.ActivityContext, index: int) -> int:
    overlap.enter()
    try:
        overlap.wait_for_peers()
        time.sleep(0.05)
    finally:
        overlap.leave()
    return index


@durable.activity
async def crowded_async(ctx: durable.ActivityContext, index: int) -> int:
    overlap.enter()
    try:
        deadline = time.monotonic() + overlap.patience
        while overlap.running < overlap.target and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
    finally:
        overlap.leave()
    return index


class WkCrowd(durable.Orchestration[int, int]):
    async def run(self, count: int) -> int:
        return len(await durable.when_all([self.call_activity(crowded, i) for i in range(count)]))


class WkMixedCrowd(durable.Orchestration[int, int]):
    async def run(self, count: int) -> int:
        tasks = [self.call_activity(crowded if i % 2 else crowded_async, i) for i in range(count)]
        return len(await durable.when_all(tasks))


# ------------------------------------------------------------------ other fixtures


@durable.activity
def echo_size(ctx: durable.ActivityContext, text: str) -> str:
    return text


@durable.activity
def inflate(ctx: durable.ActivityContext, size: int) -> str:
    return "x" * size


class WkLarge(durable.Orchestration[str, int]):
    async def run(self, text: str) -> int:
        return len(await self.call_activity(echo_size, text))


class WkInflate(durable.Orchestration[int, int]):
    async def run(self, size: int) -> int:
        return len(await self.call_activity(inflate, size))


class WkPlusOne(durable.Orchestration[int, int]):
    async def run(self, value: int) -> int:
        return value + 1


class WkWaiter(durable.Orchestration[int, int]):
    async def run(self, value: int) -> int:
        return value + await self.wait_for_event("add", int)


_slow_started = threading.Event()
_slow_release = threading.Event()


@durable.activity
def slow_step(ctx: durable.ActivityContext, value: int) -> int:
    _slow_started.set()
    _slow_release.wait(10)
    return value


class WkSlow(durable.Orchestration[int, int]):
    async def run(self, value: int) -> int:
        return await self.call_activity(slow_step, value)


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


# ------------------------------------------------------------------ concurrency limits


@pytest.mark.parametrize("limit", [50, 5])
def test_activity_limit_is_reached_exactly(make_worker: WorkerFactory, client: durable.Client, limit: int) -> None:
    overlap.reset(target=limit, patience=3.0)
    make_worker(orchestrations=[WkCrowd], activities=[crowded], max_concurrent_activities=limit)

    assert client.start(WkCrowd, 50).result(timeout=60) == 50

    assert overlap.peak == limit


def test_activity_limit_spans_sync_and_async(make_worker: WorkerFactory, client: durable.Client) -> None:
    overlap.reset(target=6, patience=1.0)
    make_worker(orchestrations=[WkMixedCrowd], activities=[crowded, crowded_async], max_concurrent_activities=6)

    assert client.start(WkMixedCrowd, 24).result(timeout=60) == 24

    assert overlap.peak == 6


def test_one_orchestration_at_a_time_still_completes(make_worker: WorkerFactory, client: durable.Client) -> None:
    make_worker(orchestrations=[WkPlusOne], max_concurrent_orchestrations=1)

    handles = [client.start(WkPlusOne, i) for i in range(20)]

    assert [handle.result(timeout=60) for handle in handles] == list(range(1, 21))


# ------------------------------------------------------------------ names the worker does not host


def test_unhosted_name_stays_pending_with_filters(make_worker: WorkerFactory, client: durable.Client) -> None:
    make_worker(orchestrations=[WkPlusOne])
    handle = client.start("WkNobodyHostsThis", 1, instance_id=_unique("unhosted"))

    with pytest.raises(TimeoutError) as raised:
        handle.wait_for_start(timeout=1.0)

    assert "PENDING" in str(raised.value)
    assert client.start(WkPlusOne, 1).result(timeout=30) == 2


def test_unhosted_name_fails_without_filters(make_worker: WorkerFactory, client: durable.Client) -> None:
    name = f"WkUnknown{uuid.uuid4().hex[:8]}"
    make_worker(orchestrations=[WkPlusOne], activities=[echo_size], filter_work_items=False)
    handle = client.start(name, 1)

    with pytest.raises(OrchestrationFailedError) as raised:
        handle.result(timeout=30)

    details = raised.value.details
    assert details is not None
    assert details.error_type == "durable.errors.OrchestrationNotRegisteredError"
    assert name in details.message
    assert "WkPlusOne" in details.message


# ------------------------------------------------------------------ payload size


def test_5_mib_payload_with_raised_limits(make_worker: WorkerFactory, sidecar: SidecarUnderTest) -> None:
    limit = SIDECAR_MAX_MESSAGE_BYTES
    make_worker(orchestrations=[WkLarge], activities=[echo_size], max_message_bytes=limit)
    text = "y" * (5 * 1024 * 1024)

    with durable.Client(sidecar.address, max_message_bytes=limit) as big_client:
        handle = big_client.start(WkLarge, text)
        assert handle.result(timeout=60) == len(text)
        state = big_client.get_state(handle.instance_id)

    assert state is not None and state.input == text


def test_5_mib_input_fails_fast_with_default_limits(client: durable.Client) -> None:
    started = time.monotonic()

    with pytest.raises(PayloadError) as raised:
        client.start(WkLarge, "z" * (5 * 1024 * 1024))

    assert time.monotonic() - started < 10
    assert "max_message_bytes" in str(raised.value)


def test_large_result_fails_with_default_limits(
    make_worker: WorkerFactory, client: durable.Client
) -> None:
    make_worker(orchestrations=[WkInflate], activities=[inflate])
    handle = client.start(WkInflate, 5 * 1024 * 1024)

    with pytest.raises(OrchestrationFailedError) as raised:
        handle.result(timeout=30)

    details = raised.value.details
    assert details is not None
    assert any("max_message_bytes" in detail.message for detail in details.chain())


# ------------------------------------------------------------------ reconnecting


def test_reconnects_after_stream_cancelled(
    make_worker: WorkerFactory, client: durable.Client, sidecar: SidecarUnderTest, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="durable.worker")
    with GrpcProxy(sidecar.address) as proxy:
        make_worker(address=proxy.address, orchestrations=[WkPlusOne])
        assert client.start(WkPlusOne, 1).result(timeout=30) == 2

        assert proxy.cut_streams(grpc.StatusCode.CANCELLED) == 1
        handle = client.start(WkPlusOne, 10)

        assert handle.result(timeout=30) == 11
        assert proxy.stream_count >= 2
    messages = [record.getMessage() for record in caplog.records]
    assert any(message.startswith("disconnected from the sidecar") for message in messages)
    assert any("reconnecting to the sidecar" in message and "(attempt 1)" in message for message in messages)


def test_reconnects_after_network_error(make_worker: WorkerFactory, client: durable.Client, sidecar: SidecarUnderTest) -> None:
    with GrpcProxy(sidecar.address) as proxy:
        make_worker(address=proxy.address, orchestrations=[WkPlusOne])
        assert client.start(WkPlusOne, 1).result(timeout=30) == 2

        proxy.cut_streams(grpc.StatusCode.UNAVAILABLE)
        proxy.cut_streams(grpc.StatusCode.UNAVAILABLE)

        assert client.start(WkPlusOne, 20).result(timeout=30) == 21


@pytest.fixture
def restartable_sidecar(sidecar: SidecarUnderTest, tmp_path: Path) -> Iterator[tuple[str, Callable[[], None]]]:
    """A private sidecar this test may restart on the same port (and database, for the embedded one)."""
    port = launch.free_port()
    if sidecar.kind == "official":
        processes = [launch.start_official_sidecar(port)[0]]

        def restart_official() -> None:
            launch.stop(processes[-1])
            processes.append(launch.start_official_sidecar(port)[0])

        try:
            yield f"127.0.0.1:{port}", restart_official
        finally:
            launch.stop(processes[-1])
        return

    requires_embedded(sidecar, "restarting needs a sidecar this test starts")
    db = str(tmp_path / "restart.db")
    sidecars = [Sidecar(db=db, port=port).start()]

    def restart_embedded() -> None:
        sidecars[-1].stop(grace=0)
        sidecars.append(Sidecar(db=db, port=port).start())

    try:
        yield sidecars[-1].address, restart_embedded
    finally:
        sidecars[-1].stop(grace=0)


def test_reconnects_after_sidecar_restart(
    make_worker: WorkerFactory,
    restartable_sidecar: tuple[str, Callable[[], None]],
    sidecar: SidecarUnderTest,
) -> None:
    address, restart = restartable_sidecar
    make_worker(address=address, orchestrations=[WkWaiter, WkPlusOne])
    with durable.Client(address) as private_client:
        waiting = private_client.start(WkWaiter, 1)
        waiting.wait_for_start(timeout=15)

        restart()

        assert private_client.start(WkPlusOne, 5).result(timeout=30) == 6
        if sidecar.is_embedded:
            # Same database: the instance that was waiting survives the restart.
            waiting.raise_event("add", 2)
            assert waiting.result(timeout=30) == 3


# ------------------------------------------------------------------ stopping


def test_stop_abandons_running_work_and_leaves_no_threads(
    make_worker: WorkerFactory, client: durable.Client, sidecar: SidecarUnderTest
) -> None:
    _slow_started.clear()
    _slow_release.clear()
    worker = make_worker(orchestrations=[WkSlow], activities=[slow_step])
    handle = client.start(WkSlow, 7)
    assert _slow_started.wait(15)

    started = time.monotonic()
    worker.stop(timeout=0.2)
    assert time.monotonic() - started < 3

    _slow_release.set()
    deadline = time.monotonic() + 5
    while worker_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert worker_threads() == []

    if sidecar.is_embedded:
        # The abandoned activity is redelivered to the next worker.
        make_worker(orchestrations=[WkSlow], activities=[slow_step])
        assert handle.result(timeout=30) == 7


def test_stop_drains_finished_work_quickly(make_worker: WorkerFactory, client: durable.Client) -> None:
    worker = make_worker(orchestrations=[WkPlusOne])
    assert client.start(WkPlusOne, 1).result(timeout=30) == 2

    started = time.monotonic()
    worker.stop(timeout=10)

    assert time.monotonic() - started < 2
    assert worker_threads() == []


def test_run_blocks_until_sigint(sidecar: SidecarUnderTest, client: durable.Client) -> None:
    worker = durable.Worker(sidecar.address, orchestrations=[WkPlusOne])
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    observed: list[int] = []
    checker = threading.Timer(0.5, lambda: observed.append(client.start(WkPlusOne, 2).result(timeout=10)))
    checker.start()

    started = time.monotonic()
    worker.run()

    assert time.monotonic() - started >= 0.9
    checker.join(10)
    assert observed == [3]
    assert worker_threads() == []


def test_worker_rejects_duplicate_names() -> None:
    class WkPlusOneAgain(durable.Orchestration[int, int], name="WkPlusOne"):
        async def run(self, value: int) -> int:
            return value

    with pytest.raises(ValueError, match="WkPlusOne"):
        durable.Worker("127.0.0.1:1", orchestrations=[WkPlusOne, WkPlusOneAgain])


# ------------------------------------------------------------------ metadata and TLS


def test_metadata_on_every_call(make_worker: WorkerFactory, sidecar: SidecarUnderTest) -> None:
    metadata = {"dapr-app-id": "e2e-app", "authorization": "Bearer e2e-token"}
    with GrpcProxy(sidecar.address) as proxy:
        make_worker(address=proxy.address, orchestrations=[WkPlusOne], metadata=metadata)
        with durable.Client(proxy.address, metadata=metadata) as meta_client:
            handle = meta_client.start(WkPlusOne, 1)
            assert handle.result(timeout=30) == 2
            assert meta_client.get_state(handle.instance_id) is not None

    methods = {method.rsplit("/", 1)[1] for method, _ in proxy.calls}
    assert {"Hello", "GetWorkItems", "StartInstance", "CompleteOrchestratorTask", "GetInstance"} <= methods
    for method, sent in proxy.calls:
        assert ("dapr-app-id", "e2e-app") in sent, method
        assert ("authorization", "Bearer e2e-token") in sent, method


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return str(cert), str(key)


def test_tls_with_root_certificates(make_worker: WorkerFactory, tls_files: tuple[str, str]) -> None:
    cert, key = tls_files
    roots = Path(cert).read_bytes()
    with Sidecar(tls_cert=cert, tls_key=key) as tls_sidecar:
        make_worker(address=tls_sidecar.address, orchestrations=[WkPlusOne], secure=True, root_certificates=roots)
        with durable.Client(tls_sidecar.address, secure=True, root_certificates=roots) as tls_client:
            assert tls_client.start(WkPlusOne, 1).result(timeout=30) == 2

        with durable.Client(tls_sidecar.address) as plaintext_client, pytest.raises(ConnectionError):
            plaintext_client.start(WkPlusOne, 1)
