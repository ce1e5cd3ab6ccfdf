"""Suspend, resume, terminate, purge, continue-as-new, sub-orchestrations and events between instances."""

from __future__ import annotations

import datetime
import threading
import time

import grpc

from durable._proto import orchestrator_service_pb2 as pb
from sidecar_helpers import (
    RawWorker,
    Stub,
    continue_as_new,
    exists,
    finish,
    kinds,
    rpc_error,
    send_event,
    start,
    state,
    sub_orchestration,
    utc_in,
    wait_status,
)

TERMINATED = pb.ORCHESTRATION_STATUS_TERMINATED


def test_suspend_holds_events_until_resume(stub: Stub, worker: RawWorker) -> None:
    instance_id = start(stub)
    worker.complete(worker.next_orchestration(), [])

    stub.SuspendInstance(pb.SuspendRequest(instanceId=instance_id), timeout=5)
    suspended = worker.next_orchestration()
    assert kinds(suspended.orchestratorRequest.newEvents) == ["orchestratorStarted", "executionSuspended"]
    worker.complete(suspended, [])
    assert state(stub, instance_id).orchestrationStatus == pb.ORCHESTRATION_STATUS_SUSPENDED

    stub.RaiseEvent(pb.RaiseEventRequest(instanceId=instance_id, name="go"), timeout=5)
    worker.expect_nothing(0.4)

    stub.ResumeInstance(pb.ResumeRequest(instanceId=instance_id), timeout=5)
    resumed = worker.next_orchestration()
    assert kinds(resumed.orchestratorRequest.newEvents) == ["orchestratorStarted", "eventRaised", "executionResumed"]
    worker.complete(resumed, [])
    assert state(stub, instance_id).orchestrationStatus == pb.ORCHESTRATION_STATUS_RUNNING

    # A resume of an instance that is not suspended is dropped, never delivered.
    stub.ResumeInstance(pb.ResumeRequest(instanceId=instance_id), timeout=5)
    worker.expect_nothing(0.4)


def test_suspend_twice_and_resume_once(stub: Stub, worker: RawWorker) -> None:
    instance_id = start(stub)
    # While the first item is outstanding, the requests queue up in the inbox.
    first = worker.next_orchestration()
    stub.SuspendInstance(pb.SuspendRequest(instanceId=instance_id), timeout=5)
    stub.SuspendInstance(pb.SuspendRequest(instanceId=instance_id), timeout=5)
    stub.ResumeInstance(pb.ResumeRequest(instanceId=instance_id), timeout=5)
    stub.ResumeInstance(pb.ResumeRequest(instanceId=instance_id), timeout=5)
    worker.complete(first, [])
    item = worker.next_orchestration()
    assert kinds(item.orchestratorRequest.newEvents) == ["orchestratorStarted", "executionSuspended", "executionResumed"]


def test_terminate_pending_instance_without_worker(stub: Stub) -> None:
    instance_id = start(stub)
    request = pb.TerminateRequest(instanceId=instance_id)
    request.output.value = '"stopped"'
    stub.TerminateInstance(request, timeout=5)
    final = stub.WaitForInstanceCompletion(pb.GetInstanceRequest(instanceId=instance_id, getInputsAndOutputs=True), timeout=5)
    assert final.orchestrationState.orchestrationStatus == TERMINATED
    assert final.orchestrationState.output.value == '"stopped"'


def test_terminate_recursive_reaches_children(stub: Stub, worker: RawWorker) -> None:
    parent_id = start(stub, "Parent", "parent-1")
    worker.complete(worker.next_orchestration(), [sub_orchestration(1, "Child")])

    child_item = worker.next_orchestration()
    child_id = child_item.orchestratorRequest.instanceId
    assert child_id == "parent-1:0001"
    parent_info = child_item.orchestratorRequest.newEvents[1].executionStarted.parentInstance
    assert parent_info.taskScheduledId == 1
    assert parent_info.orchestrationInstance.instanceId == parent_id
    assert parent_info.name.value == "Parent"
    worker.complete(child_item, [])
    assert state(stub, child_id).parentInstanceId.value == parent_id

    request = pb.TerminateRequest(instanceId=parent_id, recursive=True)
    request.output.value = '"enough"'
    stub.TerminateInstance(request, timeout=5)
    parent_item = worker.next_orchestration()
    terminated = parent_item.orchestratorRequest.newEvents[1].executionTerminated
    assert terminated.recurse
    worker.complete(parent_item, [finish(2, '"enough"', TERMINATED)])

    child_item = worker.next_orchestration()
    assert child_item.orchestratorRequest.instanceId == child_id
    child_terminated = child_item.orchestratorRequest.newEvents[1].executionTerminated
    assert child_terminated.recurse
    assert child_terminated.input.value == '"enough"'
    worker.complete(child_item, [finish(1, '"enough"', TERMINATED)])
    assert state(stub, child_id).orchestrationStatus == TERMINATED
    assert state(stub, parent_id).orchestrationStatus == TERMINATED


def test_terminated_child_fails_parent_task(stub: Stub, worker: RawWorker) -> None:
    start(stub, "Parent", "parent-2")
    worker.complete(worker.next_orchestration(), [sub_orchestration(1, "Child", "kid")])
    worker.complete(worker.next_orchestration(), [])

    stub.TerminateInstance(pb.TerminateRequest(instanceId="kid"), timeout=5)
    kid = worker.next_orchestration()
    worker.complete(kid, [finish(1, status=TERMINATED)])

    parent = worker.next_orchestration()
    failed = parent.orchestratorRequest.newEvents[1].subOrchestrationInstanceFailed
    assert failed.taskScheduledId == 1
    assert failed.failureDetails.errorType == "TaskTerminated"
    assert "kid" in failed.failureDetails.errorMessage


def test_completed_child_notifies_parent_and_purge_recursive(stub: Stub, worker: RawWorker) -> None:
    parent_id = start(stub, "Parent", "parent-3")
    worker.complete(worker.next_orchestration(), [sub_orchestration(1, "Child")])
    worker.complete(worker.next_orchestration(), [finish(1, '"child result"')])

    parent = worker.next_orchestration()
    completed = parent.orchestratorRequest.newEvents[1].subOrchestrationInstanceCompleted
    assert completed.taskScheduledId == 1
    assert completed.result.value == '"child result"'
    worker.complete(parent, [finish(2, '"parent result"')])

    response = stub.PurgeInstances(pb.PurgeInstancesRequest(instanceId=parent_id, recursive=True), timeout=5)
    assert response.deletedInstanceCount == 2
    assert response.isComplete.value
    assert not exists(stub, parent_id)
    assert not exists(stub, "parent-3:0001")


def test_purge_without_recursion_keeps_children(stub: Stub, worker: RawWorker) -> None:
    parent_id = start(stub, "Parent", "parent-4")
    worker.complete(worker.next_orchestration(), [sub_orchestration(1, "Child")])
    worker.complete(worker.next_orchestration(), [finish(1)])
    worker.complete(worker.next_orchestration(), [finish(2)])
    response = stub.PurgeInstances(pb.PurgeInstancesRequest(instanceId=parent_id), timeout=5)
    assert response.deletedInstanceCount == 1
    assert exists(stub, "parent-4:0001")


def test_purge_by_filter_and_batch(stub: Stub) -> None:
    for n in range(4):
        start(stub, instance_id=f"old-{n}")
        stub.TerminateInstance(pb.TerminateRequest(instanceId=f"old-{n}"), timeout=5)
    start(stub, instance_id="live")

    batch = pb.PurgeInstancesRequest(instanceBatch=pb.InstanceBatch(instanceIds=["old-0", "live", "nobody"]))
    assert stub.PurgeInstances(batch, timeout=5).deletedInstanceCount == 1

    purge_filter = pb.PurgeInstanceFilter(runtimeStatus=[TERMINATED])
    response = stub.PurgeInstances(pb.PurgeInstancesRequest(purgeInstanceFilter=purge_filter), timeout=5)
    assert response.deletedInstanceCount == 3
    assert response.isComplete.value
    assert exists(stub, "live")
    assert not exists(stub, "old-3")


def test_continue_as_new_keeps_carryover_and_new_events(stub: Stub, worker: RawWorker) -> None:
    instance_id = start(stub, input="1")
    first = worker.next_orchestration()
    first_execution = first.orchestratorRequest.executionId.value

    # This event arrives while the run is in flight, so it belongs to the next one.
    stub.RaiseEvent(pb.RaiseEventRequest(instanceId=instance_id, name="late"), timeout=5)
    saved = pb.HistoryEvent(eventId=-1)
    saved.eventRaised.name = "saved"
    saved.eventRaised.input.value = '"kept"'
    worker.complete(first, [continue_as_new(1, "2", [saved])])

    second = worker.next_orchestration()
    request = second.orchestratorRequest
    assert list(request.pastEvents) == []
    assert kinds(request.newEvents) == ["orchestratorStarted", "executionStarted", "eventRaised", "eventRaised"]
    started = request.newEvents[1].executionStarted
    assert started.input.value == "2"
    assert started.orchestrationInstance.executionId.value == request.executionId.value
    assert request.executionId.value != first_execution
    assert [event.eventRaised.name for event in request.newEvents[2:]] == ["saved", "late"]
    assert request.newEvents[2].eventRaised.input.value == '"kept"'

    current = state(stub, instance_id)
    assert current.orchestrationStatus == pb.ORCHESTRATION_STATUS_RUNNING
    assert current.input.value == "2"
    worker.complete(second, [finish(1, "2")])
    assert state(stub, instance_id).orchestrationStatus == pb.ORCHESTRATION_STATUS_COMPLETED


def test_send_event_arrives_as_event_raised(stub: Stub, worker: RawWorker) -> None:
    sender = start(stub, "Sender", "sender")
    worker.complete(worker.next_orchestration(), [])
    receiver = start(stub, "Receiver", "receiver")
    worker.complete(worker.next_orchestration(), [])

    stub.RaiseEvent(pb.RaiseEventRequest(instanceId=sender, name="kick"), timeout=5)
    worker.complete(worker.next_orchestration(), [send_event(1, receiver, "Ping", '"hi"')])

    item = worker.next_orchestration()
    assert item.orchestratorRequest.instanceId == receiver
    event = item.orchestratorRequest.newEvents[1]
    assert event.WhichOneof("eventType") == "eventRaised"
    assert event.eventRaised.name == "Ping"
    assert event.eventRaised.input.value == '"hi"'

    history = stub.StreamInstanceHistory(pb.StreamInstanceHistoryRequest(instanceId=sender), timeout=5)
    sent = [event for chunk in history for event in chunk.events if event.HasField("eventSent")]
    assert len(sent) == 1
    assert sent[0].eventId == 1
    assert sent[0].eventSent.instanceId == receiver


def test_scheduled_start_delays_first_work_item(stub: Stub, worker: RawWorker) -> None:
    request = pb.CreateInstanceRequest(name="Later", instanceId="later")
    due = utc_in(0.6)
    request.scheduledStartTimestamp.FromDatetime(due)
    stub.StartInstance(request, timeout=5)
    # Events raised before the start wait for it as well.
    stub.RaiseEvent(pb.RaiseEventRequest(instanceId="later", name="early"), timeout=5)

    worker.expect_nothing(0.3)
    pending = state(stub, "later")
    assert pending.orchestrationStatus == pb.ORCHESTRATION_STATUS_PENDING
    assert pending.scheduledStartTimestamp.ToDatetime(tzinfo=datetime.timezone.utc) == due

    item = worker.next_orchestration(timeout=3)
    assert datetime.datetime.now(datetime.timezone.utc) >= due
    assert kinds(item.orchestratorRequest.newEvents) == ["orchestratorStarted", "executionStarted", "eventRaised"]


def test_id_reuse_policy(stub: Stub, worker: RawWorker) -> None:
    start(stub, instance_id="order-1", input="1")
    error = rpc_error(stub.StartInstance, pb.CreateInstanceRequest(name="Flow", instanceId="order-1"), timeout=5)
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "order-1" in error.details()

    worker.complete(worker.next_orchestration(), [finish(1)])
    only_failed = pb.CreateInstanceRequest(name="Flow", instanceId="order-1")
    only_failed.orchestrationIdReusePolicy.replaceableStatus.append(pb.ORCHESTRATION_STATUS_FAILED)
    error = rpc_error(stub.StartInstance, only_failed, timeout=5)
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS

    old_execution = state(stub, "order-1").executionId.value
    replace_completed = pb.CreateInstanceRequest(name="Flow", instanceId="order-1")
    replace_completed.input.value = "2"
    replace_completed.orchestrationIdReusePolicy.replaceableStatus.append(pb.ORCHESTRATION_STATUS_COMPLETED)
    stub.StartInstance(replace_completed, timeout=5)
    fresh = state(stub, "order-1")
    assert fresh.orchestrationStatus == pb.ORCHESTRATION_STATUS_PENDING
    assert fresh.input.value == "2"
    assert fresh.executionId.value != old_execution
    item = worker.next_orchestration()
    assert list(item.orchestratorRequest.pastEvents) == []


def test_wait_rpcs_honour_deadline_and_wake_on_change(stub: Stub, worker: RawWorker) -> None:
    instance_id = start(stub)
    began = time.monotonic()
    error = rpc_error(stub.WaitForInstanceCompletion, pb.GetInstanceRequest(instanceId=instance_id), timeout=0.5)
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - began < 2

    results: dict[str, pb.GetInstanceResponse] = {}

    def wait(name: str, call: object) -> None:
        results[name] = call(pb.GetInstanceRequest(instanceId=instance_id), timeout=10)  # type: ignore[operator]

    waiters = [
        threading.Thread(target=wait, args=("start", stub.WaitForInstanceStart)),
        threading.Thread(target=wait, args=("completion", stub.WaitForInstanceCompletion)),
    ]
    for waiter in waiters:
        waiter.start()
    time.sleep(0.2)
    assert not results

    worker.complete(worker.next_orchestration(), [])
    waiters[0].join(2)
    assert results["start"].orchestrationState.orchestrationStatus == pb.ORCHESTRATION_STATUS_RUNNING
    assert "completion" not in results

    stub.RaiseEvent(pb.RaiseEventRequest(instanceId=instance_id, name="go"), timeout=5)
    worker.complete(worker.next_orchestration(), [finish(1)])
    waiters[1].join(2)
    assert results["completion"].orchestrationState.orchestrationStatus == pb.ORCHESTRATION_STATUS_COMPLETED


def test_restart(stub: Stub, worker: RawWorker) -> None:
    instance_id = start(stub, "Flow", "again", input='"x"')
    error = rpc_error(stub.RestartInstance, pb.RestartInstanceRequest(instanceId=instance_id), timeout=5)
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    worker.complete(worker.next_orchestration(), [finish(1, '"first"')])

    same = stub.RestartInstance(pb.RestartInstanceRequest(instanceId=instance_id), timeout=5).instanceId
    assert same == instance_id
    item = worker.next_orchestration()
    assert item.orchestratorRequest.newEvents[1].executionStarted.input.value == '"x"'
    assert list(item.orchestratorRequest.pastEvents) == []
    worker.complete(item, [finish(1, '"second"')])

    other = stub.RestartInstance(
        pb.RestartInstanceRequest(instanceId=instance_id, restartWithNewInstanceId=True), timeout=5
    ).instanceId
    assert other != instance_id
    assert state(stub, other).name == "Flow"
    assert state(stub, other).input.value == '"x"'
    assert state(stub, instance_id).output.value == '"second"'
    wait_status(stub, instance_id, pb.ORCHESTRATION_STATUS_COMPLETED)
