"""Results of a fan-out reach the orchestration in few work items, and a lone result at once."""

from __future__ import annotations

import time
import grpc
import pytest

from durable._proto import orchestrator_service_pb2_grpc as pb_grpc
from durable.sidecar import Sidecar
from sidecar_helpers import RawWorker, schedule_task, start

FAN_OUT = 40


def _run_fan_out(coalesce_window: float) -> tuple[int, float]:
    """Complete a fan-out's activities back to back; return the results in the next work item and its delay."""
    with Sidecar(coalesce_window=coalesce_window) as sidecar, grpc.insecure_channel(sidecar.address) as channel:
        stub = pb_grpc.TaskHubSidecarServiceStub(channel)
        worker = RawWorker(stub)
        try:
            start(stub, "Fan", "fan")
            first = worker.next_orchestration()
            worker.complete(first, [schedule_task(i + 1, "work") for i in range(FAN_OUT)])
            activities = [worker.next_activity() for _ in range(FAN_OUT)]
            for item in activities[:-1]:
                worker.complete_activity(item, "1")
            # The first work item after the results, with or without waiting for them.
            item = worker.next_orchestration(timeout=10)
            results = sum(1 for e in item.orchestratorRequest.newEvents if e.HasField("taskCompleted"))
            worker.complete(item, [])
            before_last = time.monotonic()
            worker.complete_activity(activities[-1], "1")
            last = worker.next_orchestration(timeout=10)
            lone_delay = time.monotonic() - before_last
            assert sum(1 for e in last.orchestratorRequest.newEvents if e.HasField("taskCompleted")) >= 1
            return results, lone_delay
        finally:
            worker.close()


def test_fan_in_results_share_a_work_item() -> None:
    results, _ = _run_fan_out(coalesce_window=2.0)
    # Every result but the held-back last one arrives in one work item.
    assert results == FAN_OUT - 1


def test_last_outstanding_result_is_dispatched_at_once() -> None:
    _, lone_delay = _run_fan_out(coalesce_window=2.0)
    assert lone_delay < 1.0


def test_negative_window_is_rejected() -> None:
    with pytest.raises(ValueError, match="coalesce_window"):
        Sidecar(coalesce_window=-1)


def test_results_during_work_item_coalesce() -> None:
    window = 0.5
    with Sidecar(coalesce_window=window) as sidecar, grpc.insecure_channel(sidecar.address) as channel:
        stub = pb_grpc.TaskHubSidecarServiceStub(channel)
        worker = RawWorker(stub)
        try:
            start(stub, "Fan", "fan")
            worker.complete(worker.next_orchestration(), [schedule_task(i + 1, "work") for i in range(3)])
            activities = [worker.next_activity() for _ in range(3)]
            worker.complete_activity(activities[0], "1")
            # The second result arrives while this work item is out. It then
            # completes with one activity still running.
            in_flight = worker.next_orchestration(timeout=10)
            worker.complete_activity(activities[1], "1")
            completed_at = time.monotonic()
            worker.complete(in_flight, [])
            second = worker.next_orchestration(timeout=10)
            delay = time.monotonic() - completed_at
            results = [e for e in second.orchestratorRequest.newEvents if e.HasField("taskCompleted")]
            assert len(results) == 1
            assert delay >= window * 0.8
        finally:
            worker.close()
