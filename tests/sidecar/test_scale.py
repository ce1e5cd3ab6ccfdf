"""Fan-out of many activities from one orchestration."""

from __future__ import annotations

import time
from concurrent import futures

from durable._proto import orchestrator_service_pb2 as pb
from sidecar_helpers import RawWorker, Stub, finish, schedule_task, start, state

FAN_OUT = 10_000


def test_fan_out_of_ten_thousand_activities(stub: Stub, worker: RawWorker) -> None:
    instance_id = start(stub, "FanOut", "fan-out")
    worker.complete(worker.next_orchestration(), [schedule_task(n, "square", str(n)) for n in range(1, FAN_OUT + 1)])

    began = time.monotonic()
    activities = [worker.next_activity() for _ in range(FAN_OUT)]
    with futures.ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda item: worker.complete_activity(item, str(int(item.activityRequest.input.value) ** 2)),
                activities,
            )
        )

    # Results arrive in batches; keep running the orchestration until all are in.
    results: dict[int, int] = {}
    runs = 0
    while len(results) < FAN_OUT:
        item = worker.next_orchestration(timeout=30)
        runs += 1
        request = item.orchestratorRequest
        assert request.newEvents[0].HasField("orchestratorStarted")
        for event in request.newEvents[1:]:
            results[event.taskCompleted.taskScheduledId] = int(event.taskCompleted.result.value)
        last = len(results) == FAN_OUT
        worker.complete(item, [finish(FAN_OUT + 1, str(sum(results.values())))] if last else [])

    assert results == {n: n * n for n in range(1, FAN_OUT + 1)}
    final = state(stub, instance_id)
    assert final.orchestrationStatus == pb.ORCHESTRATION_STATUS_COMPLETED
    assert final.output.value == str(sum(n * n for n in range(1, FAN_OUT + 1)))
    print(f"{FAN_OUT} activities in {time.monotonic() - began:.1f} s, {runs} orchestration runs")
