"""A hand-written worker on the raw gRPC stub, and builders for orchestrator actions."""

from __future__ import annotations

import datetime
import queue
import threading
import time
from collections.abc import Iterator

import grpc
import pytest

from durable._proto import orchestrator_service_pb2 as pb
from durable._proto import orchestrator_service_pb2_grpc as pb_grpc

Stub = pb_grpc.TaskHubSidecarServiceStub


class RawWorker:
    """One `GetWorkItems` stream whose items are read into a queue by a background thread."""

    def __init__(self, stub: Stub, request: pb.GetWorkItemsRequest | None = None) -> None:
        self.stub = stub
        self.call = stub.GetWorkItems(request or pb.GetWorkItemsRequest())
        self.items: queue.Queue[pb.WorkItem] = queue.Queue()
        self.pings = 0
        self.error: grpc.RpcError | None = None
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for item in self.call:
                if item.HasField("healthPing"):
                    self.pings += 1
                else:
                    self.items.put(item)
        except grpc.RpcError as error:
            self.error = error

    def next(self, timeout: float = 5.0) -> pb.WorkItem:
        try:
            return self.items.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no work item arrived within {timeout} s")

    def next_orchestration(self, timeout: float = 5.0) -> pb.WorkItem:
        item = self.next(timeout)
        assert item.HasField("orchestratorRequest"), item
        assert item.completionToken
        return item

    def next_activity(self, timeout: float = 5.0) -> pb.WorkItem:
        item = self.next(timeout)
        assert item.HasField("activityRequest"), item
        assert item.completionToken
        return item

    def expect_nothing(self, seconds: float = 0.4) -> None:
        try:
            item = self.items.get(timeout=seconds)
        except queue.Empty:
            return
        pytest.fail(f"unexpected work item: {item}")

    def complete(
        self, item: pb.WorkItem, actions: list[pb.OrchestratorAction] = [], custom_status: str | None = None
    ) -> None:
        response = pb.OrchestratorResponse(
            instanceId=item.orchestratorRequest.instanceId,
            actions=actions,
            completionToken=item.completionToken,
        )
        if custom_status is not None:
            response.customStatus.value = custom_status
        self.stub.CompleteOrchestratorTask(response, timeout=10)

    def complete_activity(self, item: pb.WorkItem, result: str | None = None) -> None:
        request = item.activityRequest
        response = pb.ActivityResponse(
            instanceId=request.orchestrationInstance.instanceId,
            taskId=request.taskId,
            completionToken=item.completionToken,
        )
        if result is not None:
            response.result.value = result
        self.stub.CompleteActivityTask(response, timeout=10)

    def close(self) -> None:
        self.call.cancel()
        self._thread.join(5)


def kinds(events: Iterator[pb.HistoryEvent] | list[pb.HistoryEvent]) -> list[str]:
    """Return the `eventType` names of history events, in order."""
    return [str(event.WhichOneof("eventType")) for event in events]


def utc_in(seconds: float) -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)


def start(stub: Stub, name: str = "Flow", instance_id: str = "", input: str | None = None, **fields: object) -> str:
    request = pb.CreateInstanceRequest(name=name, instanceId=instance_id, **fields)  # type: ignore[arg-type]
    if input is not None:
        request.input.value = input
    return stub.StartInstance(request, timeout=10).instanceId


def state(stub: Stub, instance_id: str, payloads: bool = True) -> pb.OrchestrationState:
    response = stub.GetInstance(pb.GetInstanceRequest(instanceId=instance_id, getInputsAndOutputs=payloads), timeout=10)
    assert response.exists, f"instance {instance_id} does not exist"
    return response.orchestrationState


def exists(stub: Stub, instance_id: str) -> bool:
    return stub.GetInstance(pb.GetInstanceRequest(instanceId=instance_id), timeout=10).exists


def wait_status(stub: Stub, instance_id: str, status: int, timeout: float = 5.0) -> pb.OrchestrationState:
    """Poll GetInstance until the status matches (tests only; the sidecar itself never polls)."""
    deadline = time.monotonic() + timeout
    while True:
        current = state(stub, instance_id)
        if current.orchestrationStatus == status or time.monotonic() > deadline:
            assert pb.OrchestrationStatus.Name(current.orchestrationStatus) == pb.OrchestrationStatus.Name(status)  # type: ignore[arg-type]
            return current
        time.sleep(0.02)


def schedule_task(action_id: int, name: str, input: str | None = None) -> pb.OrchestratorAction:
    action = pb.OrchestratorAction(id=action_id)
    action.scheduleTask.name = name
    if input is not None:
        action.scheduleTask.input.value = input
    return action


def create_timer(action_id: int, fire_at: datetime.datetime) -> pb.OrchestratorAction:
    action = pb.OrchestratorAction(id=action_id)
    action.createTimer.fireAt.FromDatetime(fire_at)
    return action


def sub_orchestration(action_id: int, name: str, instance_id: str = "") -> pb.OrchestratorAction:
    action = pb.OrchestratorAction(id=action_id)
    action.createSubOrchestration.name = name
    action.createSubOrchestration.instanceId = instance_id
    return action


def send_event(action_id: int, target: str, name: str, data: str | None = None) -> pb.OrchestratorAction:
    action = pb.OrchestratorAction(id=action_id)
    action.sendEvent.instance.instanceId = target
    action.sendEvent.name = name
    if data is not None:
        action.sendEvent.data.value = data
    return action


def finish(
    action_id: int,
    result: str | None = None,
    status: int = pb.ORCHESTRATION_STATUS_COMPLETED,
    failure: pb.TaskFailureDetails | None = None,
) -> pb.OrchestratorAction:
    action = pb.OrchestratorAction(id=action_id)
    action.completeOrchestration.orchestrationStatus = status  # type: ignore[assignment]
    if result is not None:
        action.completeOrchestration.result.value = result
    if failure is not None:
        action.completeOrchestration.failureDetails.CopyFrom(failure)
    return action


def continue_as_new(action_id: int, new_input: str, carryover: list[pb.HistoryEvent] = []) -> pb.OrchestratorAction:
    action = finish(action_id, new_input, pb.ORCHESTRATION_STATUS_CONTINUED_AS_NEW)
    action.completeOrchestration.carryoverEvents.extend(carryover)
    return action


def rpc_error(call: object, *args: object, **kwargs: object) -> grpc.RpcError:
    """Call an RPC that must fail and return its error."""
    with pytest.raises(grpc.RpcError) as caught:
        call(*args, **kwargs)  # type: ignore[operator]
    return caught.value
