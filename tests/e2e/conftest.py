"""Fixtures for the end-to-end suite: a sidecar, workers and a client over real gRPC.

`DURABLE_SIDECAR` picks the sidecar for the whole session:

* unset or `embedded`: durable's own `Sidecar` in this process (`:memory:`);
* `official`: the official SDK's in-memory sidecar in a child process started
  with the peer interpreter, bound to 127.0.0.1;
* `host:port`: a sidecar that is already running there.

Every sidecar started here listens on 127.0.0.1 with a 32 MiB message limit, so
that the large-payload test can raise the worker's and client's limits.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest

import durable
from durable.sidecar import Sidecar
from tests.peer import launch

SIDECAR_MAX_MESSAGE_BYTES = 32 * 1024 * 1024


@attrs.frozen
class SidecarUnderTest:
    """The sidecar of this session: `kind` is "embedded", "official" or "external"."""

    kind: str
    address: str

    @property
    def is_embedded(self) -> bool:
        return self.kind == "embedded"


def _requested_sidecar() -> str:
    return os.environ.get("DURABLE_SIDECAR", "").strip() or "embedded"


@pytest.fixture(scope="session")
def sidecar() -> Iterator[SidecarUnderTest]:
    requested = _requested_sidecar()
    if requested == "embedded":
        with Sidecar(max_message_bytes=SIDECAR_MAX_MESSAGE_BYTES) as embedded:
            yield SidecarUnderTest("embedded", embedded.address)
    elif requested == "official":
        process, address = launch.start_official_sidecar(max_message_bytes=SIDECAR_MAX_MESSAGE_BYTES)
        try:
            yield SidecarUnderTest("official", address)
        finally:
            launch.stop(process)
    else:
        yield SidecarUnderTest("external", requested)


@pytest.fixture(scope="session")
def client(sidecar: SidecarUnderTest) -> Iterator[durable.Client]:
    with durable.Client(sidecar.address) as shared:
        yield shared


WorkerFactory = Callable[..., durable.Worker]


@pytest.fixture
def make_worker(sidecar: SidecarUnderTest) -> Iterator[WorkerFactory]:
    """Start workers on the session's sidecar (or at `address=`); all are stopped after the test."""
    started: list[durable.Worker] = []

    def factory(*, address: str | None = None, start: bool = True, **kwargs: Any) -> durable.Worker:
        worker = durable.Worker(address or sidecar.address, **kwargs)
        started.append(worker)
        if start:
            worker.start()
        return worker

    yield factory
    for worker in started:
        worker.stop(timeout=5)


def requires_embedded(sidecar: SidecarUnderTest, reason: str) -> None:
    """Skip the current test unless the session runs on the embedded sidecar."""
    if not sidecar.is_embedded:
        pytest.skip(f"{reason} (session sidecar: {sidecar.kind})")


def worker_threads() -> list[str]:
    """Names of the live threads that belong to a durable worker."""
    prefixes = ("durable-worker", "durable-orchestration", "durable-activity")
    return [thread.name for thread in threading.enumerate() if thread.name.startswith(prefixes)]


@pytest.fixture(autouse=True)
def _quiet_grpc_logs() -> None:
    logging.getLogger("grpc").setLevel(logging.WARNING)
