"""Happy paths over real gRPC: activities, timers, history and state reads."""

from __future__ import annotations

import time

from durable._proto import orchestrator_service_pb2 as pb
from sidecar_helpers import (
    RawWorker,
    Stub,
    create_timer,
    finish,
    kinds,
    schedule_task,
    start,
    state,
    utc_in,
)


def test_activity_and_timer_run_to_completion(stub: Stub, worker: RawWorker) -> None:
    instance_id = start(stub, "Greet", "greet-1", input='"Tokyo"')

    first = worker.next_orchestration()
    request = first.orchestratorRequest
    assert request.instanceId == instance_id
    assert request.executionId.value
    assert list(request.pastEvents) == []
    assert kinds(request.newEvents) == ["orchestratorStarted", "executionStarted"]
    started = request.newEvents[1].executionStarted
    assert started.name == "Greet"
    assert started.input.value == '"Tokyo"'
    assert started.orchestrationInstance.instanceId == instance_id
    worker.complete(first, [schedule_task(1, "hello", '"Tokyo"')], custom_status='"step 1"')

    activity = worker.next_activity()
    assert activity.activityRequest.name == "hello"
    assert activity.activityRequest.taskId == 1
    assert activity.activityRequest.input.value == '"Tokyo"'
    assert activity.activityRequest.orchestrationInstance.instanceId == instance_id
    assert state(stub, instance_id).orchestrationStatus == pb.ORCHESTRATION_STATUS_RUNNING
    worker.complete_activity(activity, '"Hello Tokyo!"')

    second = worker.next_orchestration()
    request = second.orchestratorRequest
    assert kinds(request.pastEvents) == ["orchestratorStarted", "executionStarted", "taskScheduled"]
    assert request.pastEvents[2].eventId == 1
    assert kinds(request.newEvents) == ["orchestratorStarted", "taskCompleted"]
    assert request.newEvents[1].taskCompleted.taskScheduledId == 1
    assert request.newEvents[1].taskCompleted.result.value == '"Hello Tokyo!"'
    assert second.completionToken != first.completionToken
    fire_at = utc_in(0.3)
    worker.complete(second, [create_timer(2, fire_at)])

    third = worker.next_orchestration()
    fired = third.orchestratorRequest.newEvents[1]
    assert fired.timerFired.timerId == 2
    assert fired.timerFired.fireAt.ToDatetime(tzinfo=fire_at.tzinfo) == fire_at
    assert third.orchestratorRequest.newEvents[0].timestamp.ToDatetime(tzinfo=fire_at.tzinfo) >= fire_at
    assert third.orchestratorRequest.pastEvents[-1].eventId == 2
    worker.complete(third, [finish(3, '"Hello Tokyo!"')])

    response = stub.WaitForInstanceCompletion(pb.GetInstanceRequest(instanceId=instance_id, getInputsAndOutputs=True), timeout=5)
    final = response.orchestrationState
    assert final.orchestrationStatus == pb.ORCHESTRATION_STATUS_COMPLETED
    assert final.output.value == '"Hello Tokyo!"'
    assert final.input.value == '"Tokyo"'
    # Each response carries the current custom status; the last one had none.
    assert not final.HasField("customStatus")
    assert final.HasField("completedTimestamp")

    without = state(stub, instance_id, payloads=False)
    assert not without.HasField("input")
    assert not without.HasField("output")

    chunks = list(stub.StreamInstanceHistory(pb.StreamInstanceHistoryRequest(instanceId=instance_id), timeout=5))
    history = [event for chunk in chunks for event in chunk.events]
    assert kinds(history)[-1] == "executionCompleted"
    assert history[-1].executionCompleted.result.value == '"Hello Tokyo!"'
    assert kinds(history).count("orchestratorStarted") == 3


def test_event_raised_before_first_run_joins_first_batch(stub: Stub, worker: RawWorker) -> None:
    # Start and raise while no worker stream is open.
    worker.close()
    instance_id = start(stub)
    stub.RaiseEvent(pb.RaiseEventRequest(instanceId=instance_id, name="Approval", input=None), timeout=5)

    fresh = RawWorker(stub)
    try:
        item = fresh.next_orchestration()
        assert kinds(item.orchestratorRequest.newEvents) == ["orchestratorStarted", "executionStarted", "eventRaised"]
        assert item.orchestratorRequest.newEvents[2].eventRaised.name == "Approval"
    finally:
        fresh.close()


def test_events_during_run_wait_for_next_item(stub: Stub, worker: RawWorker) -> None:
    instance_id = start(stub)
    first = worker.next_orchestration()
    for n in range(3):
        request = pb.RaiseEventRequest(instanceId=instance_id, name=f"e{n}")
        request.input.value = str(n)
        stub.RaiseEvent(request, timeout=5)
    # One outstanding work item per instance: nothing more until this one completes.
    worker.expect_nothing(0.3)
    worker.complete(first, [])

    second = worker.next_orchestration()
    events = second.orchestratorRequest.newEvents
    assert kinds(events) == ["orchestratorStarted", "eventRaised", "eventRaised", "eventRaised"]
    assert [event.eventRaised.name for event in events[1:]] == ["e0", "e1", "e2"]


def test_failed_orchestration_reports_details(stub: Stub, worker: RawWorker) -> None:
    instance_id = start(stub)
    item = worker.next_orchestration()
    failure = pb.TaskFailureDetails(errorType="builtins.ValueError", errorMessage="bad input")
    worker.complete(item, [finish(1, status=pb.ORCHESTRATION_STATUS_FAILED, failure=failure)])

    final = stub.WaitForInstanceCompletion(pb.GetInstanceRequest(instanceId=instance_id), timeout=5).orchestrationState
    assert final.orchestrationStatus == pb.ORCHESTRATION_STATUS_FAILED
    assert final.failureDetails.errorType == "builtins.ValueError"
    assert final.failureDetails.errorMessage == "bad input"


def test_hello_and_create_task_hub(stub: Stub) -> None:
    from google.protobuf import empty_pb2

    assert stub.Hello(empty_pb2.Empty(), timeout=5) == empty_pb2.Empty()
    stub.CreateTaskHub(pb.CreateTaskHubRequest(), timeout=5)


def test_health_pings_keep_idle_stream_alive(stub: Stub) -> None:
    from durable.sidecar import Sidecar
    from conftest import connect

    with Sidecar(health_ping_interval=0.1) as pinging:
        channel, ping_stub = connect(pinging)
        idle = RawWorker(ping_stub)
        time.sleep(0.5)
        assert idle.pings >= 2
        idle.close()
        channel.close()
