"""Completion tokens, redelivery, filters, limits and rejected requests."""

from __future__ import annotations

import time
from collections.abc import Callable

import grpc
import pytest

from conftest import connect
from durable._proto import orchestrator_service_pb2 as pb
from durable.sidecar import Sidecar
from sidecar_helpers import (
    RawWorker,
    Stub,
    finish,
    kinds,
    rpc_error,
    schedule_task,
    start,
    state,
)


def test_unknown_token_rejected_and_nothing_applied(stub: Stub, worker: RawWorker) -> None:
    instance_id = start(stub)
    item = worker.next_orchestration()

    forged = pb.OrchestratorResponse(
        instanceId=instance_id, completionToken="not-a-token", actions=[schedule_task(1, "charge")]
    )
    error = rpc_error(stub.CompleteOrchestratorTask, forged, timeout=5)
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert "not-a-token" in error.details()
    assert state(stub, instance_id).orchestrationStatus == pb.ORCHESTRATION_STATUS_PENDING
    worker.expect_nothing(0.3)

    # The real token still works after the forged one was rejected.
    worker.complete(item, [finish(1, '"ok"')])
    assert state(stub, instance_id).orchestrationStatus == pb.ORCHESTRATION_STATUS_COMPLETED


def test_stale_token_after_redelivery_rejected(stub: Stub, workers: Callable[..., RawWorker]) -> None:
    instance_id = start(stub)
    first_worker = workers()
    stale = first_worker.next_orchestration()
    first_worker.close()

    second_worker = workers()
    fresh = second_worker.next_orchestration()
    assert fresh.completionToken != stale.completionToken
    assert kinds(fresh.orchestratorRequest.newEvents) == ["orchestratorStarted", "executionStarted"]

    late = pb.OrchestratorResponse(
        instanceId=instance_id, completionToken=stale.completionToken, actions=[schedule_task(1, "charge")]
    )
    error = rpc_error(stub.CompleteOrchestratorTask, late, timeout=5)
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert stale.completionToken in error.details()
    assert state(stub, instance_id).orchestrationStatus == pb.ORCHESTRATION_STATUS_PENDING
    history = stub.StreamInstanceHistory(pb.StreamInstanceHistoryRequest(instanceId=instance_id), timeout=5)
    assert [event for chunk in history for event in chunk.events] == []
    second_worker.expect_nothing(0.3)

    second_worker.complete(fresh, [finish(1)])
    assert state(stub, instance_id).orchestrationStatus == pb.ORCHESTRATION_STATUS_COMPLETED


def test_duplicate_completion_rejected(stub: Stub, worker: RawWorker) -> None:
    instance_id = start(stub)
    item = worker.next_orchestration()
    worker.complete(item, [schedule_task(1, "charge")])
    worker.next_activity()

    error = rpc_error(worker.complete, item, [schedule_task(1, "charge")])
    assert error.code() == grpc.StatusCode.NOT_FOUND
    # The duplicate scheduled no second activity.
    worker.expect_nothing(0.3)
    assert state(stub, instance_id).orchestrationStatus == pb.ORCHESTRATION_STATUS_RUNNING


def test_activity_redelivered_after_disconnect(stub: Stub, workers: Callable[..., RawWorker]) -> None:
    instance_id = start(stub)
    first_worker = workers()
    first_worker.complete(first_worker.next_orchestration(), [schedule_task(1, "charge", '"card"')])
    held = first_worker.next_activity()
    first_worker.close()

    second_worker = workers()
    redelivered = second_worker.next_activity()
    assert redelivered.activityRequest.taskId == 1
    assert redelivered.activityRequest.input.value == '"card"'
    assert redelivered.completionToken != held.completionToken

    error = rpc_error(second_worker.complete_activity, held, '"late"')
    assert error.code() == grpc.StatusCode.NOT_FOUND
    second_worker.complete_activity(redelivered, '"charged"')

    item = second_worker.next_orchestration()
    assert item.orchestratorRequest.newEvents[1].taskCompleted.result.value == '"charged"'
    second_worker.complete(item, [finish(2, '"done"')])
    final = stub.WaitForInstanceCompletion(pb.GetInstanceRequest(instanceId=instance_id, getInputsAndOutputs=True), timeout=5)
    assert final.orchestrationState.output.value == '"done"'


def test_abandoned_items_redelivered_at_once(stub: Stub, worker: RawWorker) -> None:
    start(stub)
    item = worker.next_orchestration()
    stub.AbandonTaskOrchestratorWorkItem(pb.AbandonOrchestrationTaskRequest(completionToken=item.completionToken), timeout=5)
    again = worker.next_orchestration(timeout=2)
    assert again.completionToken != item.completionToken
    assert kinds(again.orchestratorRequest.newEvents) == ["orchestratorStarted", "executionStarted"]

    worker.complete(again, [schedule_task(1, "charge")])
    activity = worker.next_activity()
    stub.AbandonTaskActivityWorkItem(pb.AbandonActivityTaskRequest(completionToken=activity.completionToken), timeout=5)
    redelivered = worker.next_activity(timeout=2)
    assert redelivered.activityRequest.taskId == 1
    assert redelivered.completionToken != activity.completionToken

    error = rpc_error(
        stub.AbandonTaskActivityWorkItem, pb.AbandonActivityTaskRequest(completionToken=activity.completionToken), timeout=5
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND


def test_lease_timeout_redelivers_held_activity() -> None:
    with Sidecar(lease_timeout=0.4) as short_leases:
        channel, stub = connect(short_leases)
        worker = RawWorker(stub)
        try:
            start(stub)
            worker.complete(worker.next_orchestration(), [schedule_task(1, "slow")])
            held = worker.next_activity()
            again = worker.next_activity(timeout=3)
            assert again.activityRequest.taskId == 1
            assert again.completionToken != held.completionToken
            assert rpc_error(worker.complete_activity, held).code() == grpc.StatusCode.NOT_FOUND
        finally:
            worker.close()
            channel.close()


def test_work_item_filters_honoured(stub: Stub, workers: Callable[..., RawWorker]) -> None:
    filters = pb.WorkItemFilters(
        orchestrations=[pb.OrchestrationFilter(name="Billing", versions=["2"])],
        activities=[pb.ActivityFilter(name="charge")],
    )
    billing = workers(pb.GetWorkItemsRequest(workItemFilters=filters))
    start(stub, "Shipping", "ship-1")
    version_one = pb.CreateInstanceRequest(name="Billing", instanceId="bill-1")
    version_one.version.value = "1"
    stub.StartInstance(version_one, timeout=5)
    billing.expect_nothing(0.3)

    version_two = pb.CreateInstanceRequest(name="Billing", instanceId="bill-2")
    version_two.version.value = "2"
    stub.StartInstance(version_two, timeout=5)
    item = billing.next_orchestration()
    assert item.orchestratorRequest.instanceId == "bill-2"
    billing.complete(item, [schedule_task(1, "notify"), schedule_task(2, "charge")])
    assert billing.next_activity().activityRequest.name == "charge"
    billing.expect_nothing(0.3)

    # An unfiltered worker takes what the filtered one refused.
    everything = workers()
    names = sorted(
        (lambda work: work.orchestratorRequest.instanceId or work.activityRequest.name)(everything.next())
        for _ in range(3)
    )
    assert names == ["bill-1", "notify", "ship-1"]


def test_max_concurrent_activities_per_stream(stub: Stub, workers: Callable[..., RawWorker]) -> None:
    limited = workers(pb.GetWorkItemsRequest(maxConcurrentActivityWorkItems=1))
    start(stub)
    limited.complete(limited.next_orchestration(), [schedule_task(1, "a"), schedule_task(2, "b")])
    first = limited.next_activity()
    limited.expect_nothing(0.3)
    limited.complete_activity(first)
    # The result makes the instance ready too, so the next two items are that
    # orchestration work item and the second activity, in either order.
    following = [limited.next(), limited.next()]
    second = [item for item in following if item.HasField("activityRequest")]
    assert len(second) == 1
    assert {first.activityRequest.taskId, second[0].activityRequest.taskId} == {1, 2}


@pytest.mark.parametrize(
    "call, message",
    [
        ("RaiseEvent", pb.RaiseEventRequest(instanceId="missing-7", name="go")),
        ("TerminateInstance", pb.TerminateRequest(instanceId="missing-7")),
        ("SuspendInstance", pb.SuspendRequest(instanceId="missing-7")),
        ("ResumeInstance", pb.ResumeRequest(instanceId="missing-7")),
        ("PurgeInstances", pb.PurgeInstancesRequest(instanceId="missing-7")),
        ("RestartInstance", pb.RestartInstanceRequest(instanceId="missing-7")),
    ],
)
def test_unknown_instance_not_found(stub: Stub, call: str, message: object) -> None:
    error = rpc_error(getattr(stub, call), message, timeout=5)
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert "missing-7" in error.details()


def test_unknown_instance_reads(stub: Stub) -> None:
    assert not stub.GetInstance(pb.GetInstanceRequest(instanceId="missing-8"), timeout=5).exists
    began = time.monotonic()
    response = stub.WaitForInstanceCompletion(pb.GetInstanceRequest(instanceId="missing-8"), timeout=5)
    assert not response.exists
    assert time.monotonic() - began < 1
    history = stub.StreamInstanceHistory(pb.StreamInstanceHistoryRequest(instanceId="missing-8"), timeout=5)
    error = rpc_error(list, history)
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert "missing-8" in error.details()


def test_purge_of_running_instance_rejected(stub: Stub, worker: RawWorker) -> None:
    instance_id = start(stub)
    worker.complete(worker.next_orchestration(), [schedule_task(1, "slow")])
    error = rpc_error(stub.PurgeInstances, pb.PurgeInstancesRequest(instanceId=instance_id), timeout=5)
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert instance_id in error.details()
    assert state(stub, instance_id).orchestrationStatus == pb.ORCHESTRATION_STATUS_RUNNING
    # The queued activity survived the rejected purge.
    assert worker.next_activity().activityRequest.name == "slow"


def test_invalid_arguments(stub: Stub, worker: RawWorker) -> None:
    error = rpc_error(stub.StartInstance, pb.CreateInstanceRequest(instanceId="x"), timeout=5)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "name" in error.details()

    query = pb.QueryInstancesRequest(query=pb.InstanceQuery(maxInstanceCount=1))
    query.query.continuationToken.value = "garbage"
    error = rpc_error(stub.QueryInstances, query, timeout=5)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "garbage" in error.details()

    instance_id = start(stub)
    item = worker.next_orchestration()
    bad = pb.OrchestratorResponse(instanceId=instance_id, completionToken=item.completionToken)
    bad.actions.add(id=1)
    error = rpc_error(stub.CompleteOrchestratorTask, bad, timeout=5)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    # The lease survives a rejected completion, so the worker can send a correct one.
    worker.complete(item, [finish(1)])
    assert state(stub, instance_id).orchestrationStatus == pb.ORCHESTRATION_STATUS_COMPLETED


def test_unsupported_rpc_names_feature(stub: Stub) -> None:
    error = rpc_error(stub.SignalEntity, pb.SignalEntityRequest(), timeout=5)
    assert error.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "entities" in error.details()
    error = rpc_error(stub.RewindInstance, pb.RewindInstanceRequest(instanceId="x"), timeout=5)
    assert error.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "rewind" in error.details()


def test_oversize_message_resource_exhausted() -> None:
    with Sidecar(max_message_bytes=64 * 1024) as small:
        channel, stub = connect(small)
        try:
            request = pb.CreateInstanceRequest(name="Big", instanceId="big-1")
            request.input.value = "x" * 100_000
            error = rpc_error(stub.StartInstance, request, timeout=5)
            assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "65536" in error.details()
            assert "--max-message-size" in error.details()
            assert not stub.GetInstance(pb.GetInstanceRequest(instanceId="big-1"), timeout=5).exists

            request.input.value = "x" * 1000
            stub.StartInstance(request, timeout=5)
        finally:
            channel.close()


def test_default_limit_accepts_more_than_grpc_default(stub: Stub) -> None:
    request = pb.CreateInstanceRequest(name="Big", instanceId="big-2")
    request.input.value = "x" * (6 * 1024 * 1024)
    stub.StartInstance(request, timeout=10)
    # Reading the input back would exceed this client's own 4 MiB receive limit.
    assert state(stub, "big-2", payloads=False).name == "Big"
