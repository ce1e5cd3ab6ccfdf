"""When the worker holds back a completion so that a sidecar can gather more results."""

from __future__ import annotations

import durable
from durable._proto import orchestrator_service_pb2 as pb
from durable._runtime import run_work_item

from tests.unit.history import execution_started, orchestrator_started, task_scheduled
from tests.unit.test_runtime import Chain, FanOut


def _worker(**options: object) -> durable.Worker:
    # Never started, so it connects to nothing.
    return durable.Worker("127.0.0.1:9", orchestrations=[Chain, FanOut], **options)  # type: ignore[arg-type]


def _first_run(
    worker: durable.Worker, name: str, value: str, past_events: int
) -> tuple[pb.OrchestratorRequest, pb.OrchestratorResponse]:
    """Start an instance in the worker's replay cache; return a later work item and a run that changed nothing."""
    instance_id = f"{name}-1"
    request = pb.OrchestratorRequest(
        instanceId=instance_id, newEvents=[orchestrator_started(), execution_started(name, value, instance_id)]
    )
    run_work_item(worker._orchestrations, request, cache=worker._replay_cache)
    later = pb.OrchestratorRequest(instanceId=instance_id, pastEvents=[task_scheduled(1, "x")] * past_events)
    return later, pb.OrchestratorResponse(instanceId=instance_id)


def test_fan_in_with_long_history_is_held_back() -> None:
    worker = _worker()
    later, idle = _first_run(worker, "FanOut", "5", past_events=10_000)
    # 10 µs per past event, under the 0.25 s default cap.
    assert worker._hold_back_delay(later, idle) == 10_000 * 1e-5


def test_hold_back_is_capped() -> None:
    worker = _worker(fan_in_delay=0.01)
    later, idle = _first_run(worker, "FanOut", "5", past_events=100_000)
    assert worker._hold_back_delay(later, idle) == 0.01


def test_run_with_new_actions_is_not_held_back() -> None:
    worker = _worker()
    later, _ = _first_run(worker, "FanOut", "5", past_events=10_000)
    busy = pb.OrchestratorResponse(instanceId=later.instanceId, actions=[pb.OrchestratorAction(id=9)])
    assert worker._hold_back_delay(later, busy) == 0.0


def test_single_waiting_task_is_not_held_back() -> None:
    worker = _worker()
    later, idle = _first_run(worker, "Chain", "1", past_events=10_000)
    assert worker._hold_back_delay(later, idle) == 0.0


def test_zero_turns_hold_back_off() -> None:
    worker = _worker(fan_in_delay=0)
    later, idle = _first_run(worker, "FanOut", "5", past_events=10_000)
    assert worker._hold_back_delay(later, idle) == 0.0
