"""Fixtures: an in-memory sidecar on 127.0.0.1, a stub connected to it, and raw workers."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import grpc
import pytest

from durable._proto import orchestrator_service_pb2 as pb
from durable._proto import orchestrator_service_pb2_grpc as pb_grpc
from durable.sidecar import Sidecar
from sidecar_helpers import RawWorker


@pytest.fixture
def sidecar() -> Iterator[Sidecar]:
    with Sidecar(":memory:", "127.0.0.1", 0, health_ping_interval=30.0) as running:
        yield running


def connect(sidecar: Sidecar) -> tuple[grpc.Channel, pb_grpc.TaskHubSidecarServiceStub]:
    channel = grpc.insecure_channel(sidecar.address)
    return channel, pb_grpc.TaskHubSidecarServiceStub(channel)


@pytest.fixture
def stub(sidecar: Sidecar) -> Iterator[pb_grpc.TaskHubSidecarServiceStub]:
    channel, client = connect(sidecar)
    yield client
    channel.close()


@pytest.fixture
def workers(stub: pb_grpc.TaskHubSidecarServiceStub) -> Iterator[Callable[..., RawWorker]]:
    """Open raw worker streams on the sidecar; all are closed after the test."""
    opened: list[RawWorker] = []

    def open_worker(request: pb.GetWorkItemsRequest | None = None) -> RawWorker:
        worker = RawWorker(stub, request)
        opened.append(worker)
        return worker

    yield open_worker
    for worker in opened:
        worker.close()


@pytest.fixture
def worker(workers: Callable[..., RawWorker]) -> RawWorker:
    return workers()
