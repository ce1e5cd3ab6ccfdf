"""A worker that streams history gets only the events it has not seen; others get all of them."""

from __future__ import annotations

from collections.abc import Callable


from durable._proto import orchestrator_service_pb2 as pb
from durable._proto import orchestrator_service_pb2_grpc as pb_grpc
from durable._runtime import PAST_EVENTS_OFFSET
from sidecar_helpers import RawWorker, schedule_task, start

STREAMING = pb.GetWorkItemsRequest(capabilities=[pb.WORKER_CAPABILITY_HISTORY_STREAMING])


def _two_steps(stub: pb_grpc.TaskHubSidecarServiceStub, worker: RawWorker) -> tuple[pb.WorkItem, pb.WorkItem]:
    start(stub, "Flow", "tail")
    first = worker.next_orchestration()
    worker.complete(first, [schedule_task(1, "work")])
    worker.complete_activity(worker.next_activity(), "1")
    second = worker.next_orchestration()
    return first, second


def test_streaming_worker_gets_only_the_tail(
    stub: pb_grpc.TaskHubSidecarServiceStub, workers: Callable[..., RawWorker]
) -> None:
    worker = workers(STREAMING)
    first, second = _two_steps(stub, worker)

    request = second.orchestratorRequest
    seen = len(first.orchestratorRequest.pastEvents) + len(first.orchestratorRequest.newEvents)
    assert request.requiresHistoryStreaming
    assert request.properties[PAST_EVENTS_OFFSET].number_value == seen
    # Only the confirmation of the scheduled activity is new in the history.
    assert [e.WhichOneof("eventType") for e in request.pastEvents] == ["taskScheduled"]
    assert [e.WhichOneof("eventType") for e in request.newEvents] == ["orchestratorStarted", "taskCompleted"]

    full = [e for chunk in stub.StreamInstanceHistory(pb.StreamInstanceHistoryRequest(instanceId="tail")) for e in chunk.events]
    assert len(full) == seen + 1
    assert full[seen] == request.pastEvents[0]


def test_other_workers_get_the_whole_history(
    stub: pb_grpc.TaskHubSidecarServiceStub, workers: Callable[..., RawWorker]
) -> None:
    worker = workers()
    _, second = _two_steps(stub, worker)

    request = second.orchestratorRequest
    assert not request.requiresHistoryStreaming
    assert PAST_EVENTS_OFFSET not in request.properties
    kinds = [e.WhichOneof("eventType") for e in request.pastEvents]
    assert kinds == ["orchestratorStarted", "executionStarted", "taskScheduled"]


def test_redelivered_item_after_abandon_keeps_the_old_offset(
    stub: pb_grpc.TaskHubSidecarServiceStub, workers: Callable[..., RawWorker]
) -> None:
    worker = workers(STREAMING)
    first, second = _two_steps(stub, worker)
    stub.AbandonTaskOrchestratorWorkItem(pb.AbandonOrchestrationTaskRequest(completionToken=second.completionToken))

    again = worker.next_orchestration()
    offset = again.orchestratorRequest.properties[PAST_EVENTS_OFFSET].number_value
    assert offset == second.orchestratorRequest.properties[PAST_EVENTS_OFFSET].number_value
    assert list(again.orchestratorRequest.pastEvents) == list(second.orchestratorRequest.pastEvents)
