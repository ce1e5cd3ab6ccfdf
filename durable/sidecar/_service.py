"""The gRPC servicer: `TaskHubSidecarService` methods mapped onto the engine."""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable, Iterator
from typing import Any

import grpc
from google.protobuf import empty_pb2
from google.protobuf import message as protobuf_message
from google.protobuf import message_factory

from durable._proto import orchestrator_service_pb2 as pb

from . import _events as ev
from ._dispatch import Dispatcher
from ._engine import Engine
from ._errors import DeadlineExceeded, InvalidArgument, RequestError

__all__ = ["SERVICE_NAME", "build_handler"]

logger = logging.getLogger("durable.sidecar.service")

SERVICE_NAME = "TaskHubSidecarService"

# Methods this sidecar does not serve, and the feature each one belongs to.
_UNSUPPORTED = {
    "RewindInstance": "rewinding failed orchestrations",
    "CompleteEntityTask": "durable entities",
    "SignalEntity": "durable entities",
    "GetEntity": "durable entities",
    "QueryEntities": "durable entities",
    "CleanEntityStorage": "durable entities",
    "AbandonTaskEntityWorkItem": "durable entities",
    "DeleteTaskHub": "deleting the task hub (stop the sidecar and delete its database file instead)",
    "SkipGracefulOrchestrationTerminations": "skipping graceful terminations, a hosted-service feature",
}

# A gRPC deadline further away than this is treated as no deadline.
_NO_DEADLINE = 1e8


class _Oversize:
    """Stands in for a request that exceeded the size limit, so the handler can reject it clearly."""

    def __init__(self, size: int) -> None:
        self.size = size


def _payload(wrapper: Any, present: bool) -> str | None:
    return wrapper.value if present else None


def _timeout(context: grpc.ServicerContext) -> float | None:
    remaining = context.time_remaining()
    if remaining is None or remaining > _NO_DEADLINE:
        return None
    return float(remaining)


class SidecarService:
    """One method per RPC; each takes the parsed request and the gRPC context."""

    def __init__(self, engine: Engine, dispatcher: Dispatcher) -> None:
        self._engine = engine
        self._dispatcher = dispatcher

    def Hello(self, request: empty_pb2.Empty, context: grpc.ServicerContext) -> empty_pb2.Empty:
        return empty_pb2.Empty()

    def CreateTaskHub(self, request: pb.CreateTaskHubRequest, context: grpc.ServicerContext) -> pb.CreateTaskHubResponse:
        # The database is the task hub, and it exists once the sidecar runs.
        return pb.CreateTaskHubResponse()

    def StartInstance(self, request: pb.CreateInstanceRequest, context: grpc.ServicerContext) -> pb.CreateInstanceResponse:
        return pb.CreateInstanceResponse(instanceId=self._engine.start_instance(request))

    def RestartInstance(
        self, request: pb.RestartInstanceRequest, context: grpc.ServicerContext
    ) -> pb.RestartInstanceResponse:
        instance_id = self._engine.restart_instance(request.instanceId, request.restartWithNewInstanceId)
        return pb.RestartInstanceResponse(instanceId=instance_id)

    def GetInstance(self, request: pb.GetInstanceRequest, context: grpc.ServicerContext) -> pb.GetInstanceResponse:
        return self._engine.get_instance(request.instanceId, request.getInputsAndOutputs)

    def WaitForInstanceStart(
        self, request: pb.GetInstanceRequest, context: grpc.ServicerContext
    ) -> pb.GetInstanceResponse:
        return self._wait(request, context, lambda status: status != ev.PENDING, "start")

    def WaitForInstanceCompletion(
        self, request: pb.GetInstanceRequest, context: grpc.ServicerContext
    ) -> pb.GetInstanceResponse:
        return self._wait(request, context, lambda status: status in ev.TERMINAL_STATUSES, "complete")

    def _wait(
        self,
        request: pb.GetInstanceRequest,
        context: grpc.ServicerContext,
        done: Callable[[int], bool],
        what: str,
    ) -> pb.GetInstanceResponse:
        instance_id = request.instanceId
        with self._dispatcher.lock:
            context.add_callback(lambda: self._wake(instance_id))
        response = self._engine.wait_for_instance(
            instance_id, request.getInputsAndOutputs, done, _timeout(context), lambda: not context.is_active()
        )
        if response is None:
            raise DeadlineExceeded(
                f"orchestration instance {instance_id!r} did not {what} before the call's deadline", instance_id
            )
        return response

    def _wake(self, instance_id: str) -> None:
        with self._dispatcher.lock:
            self._dispatcher.notify_instance(instance_id)

    def RaiseEvent(self, request: pb.RaiseEventRequest, context: grpc.ServicerContext) -> pb.RaiseEventResponse:
        self._engine.raise_event(request.instanceId, request.name, _payload(request.input, request.HasField("input")))
        return pb.RaiseEventResponse()

    def TerminateInstance(self, request: pb.TerminateRequest, context: grpc.ServicerContext) -> pb.TerminateResponse:
        output = _payload(request.output, request.HasField("output"))
        self._engine.terminate(request.instanceId, output, request.recursive)
        return pb.TerminateResponse()

    def SuspendInstance(self, request: pb.SuspendRequest, context: grpc.ServicerContext) -> pb.SuspendResponse:
        self._engine.suspend(request.instanceId, _payload(request.reason, request.HasField("reason")))
        return pb.SuspendResponse()

    def ResumeInstance(self, request: pb.ResumeRequest, context: grpc.ServicerContext) -> pb.ResumeResponse:
        self._engine.resume(request.instanceId, _payload(request.reason, request.HasField("reason")))
        return pb.ResumeResponse()

    def QueryInstances(
        self, request: pb.QueryInstancesRequest, context: grpc.ServicerContext
    ) -> pb.QueryInstancesResponse:
        return self._engine.query_instances(request.query)

    def ListInstanceIds(
        self, request: pb.ListInstanceIdsRequest, context: grpc.ServicerContext
    ) -> pb.ListInstanceIdsResponse:
        return self._engine.list_instance_ids(request)

    def PurgeInstances(
        self, request: pb.PurgeInstancesRequest, context: grpc.ServicerContext
    ) -> pb.PurgeInstancesResponse:
        kind = request.WhichOneof("request")
        response = pb.PurgeInstancesResponse()
        response.isComplete.value = True
        if kind == "instanceId":
            response.deletedInstanceCount = self._engine.purge_instance(request.instanceId, request.recursive)
        elif kind == "instanceBatch":
            ids = list(request.instanceBatch.instanceIds)
            response.deletedInstanceCount = self._engine.purge_batch(ids, request.recursive)
        elif kind == "purgeInstanceFilter":
            deleted, complete = self._engine.purge_where(request.purgeInstanceFilter, request.recursive)
            response.deletedInstanceCount = deleted
            response.isComplete.value = complete
        else:
            raise InvalidArgument("PurgeInstancesRequest needs one of instanceId, purgeInstanceFilter or instanceBatch")
        return response

    def StreamInstanceHistory(
        self, request: pb.StreamInstanceHistoryRequest, context: grpc.ServicerContext
    ) -> Iterator[bytes]:
        execution_id = request.executionId.value if request.HasField("executionId") else None
        yield from self._engine.history_chunks(request.instanceId, execution_id)

    def GetWorkItems(self, request: pb.GetWorkItemsRequest, context: grpc.ServicerContext) -> Iterator[bytes]:
        stream = self._dispatcher.open_stream(request, context.peer())
        # NOTE: the callback runs as soon as the worker goes away, even while this
        # generator is blocked waiting for work, so its items are redelivered at once.
        context.add_callback(lambda: self._dispatcher.close_stream(stream))
        try:
            while True:
                item = self._dispatcher.next_work_item(stream)
                if item is None:
                    return
                yield item
        finally:
            self._dispatcher.close_stream(stream)

    def CompleteOrchestratorTask(
        self, request: pb.OrchestratorResponse, context: grpc.ServicerContext
    ) -> pb.CompleteTaskResponse:
        self._engine.complete_orchestration(request)
        return pb.CompleteTaskResponse()

    def CompleteActivityTask(self, request: pb.ActivityResponse, context: grpc.ServicerContext) -> pb.CompleteTaskResponse:
        self._engine.complete_activity(request)
        return pb.CompleteTaskResponse()

    def AbandonTaskOrchestratorWorkItem(
        self, request: pb.AbandonOrchestrationTaskRequest, context: grpc.ServicerContext
    ) -> pb.AbandonOrchestrationTaskResponse:
        self._engine.abandon_orchestration(request.completionToken)
        return pb.AbandonOrchestrationTaskResponse()

    def AbandonTaskActivityWorkItem(
        self, request: pb.AbandonActivityTaskRequest, context: grpc.ServicerContext
    ) -> pb.AbandonActivityTaskResponse:
        self._engine.abandon_activity(request.completionToken)
        return pb.AbandonActivityTaskResponse()


def _instance_id_of(request: object) -> str | None:
    for name in ("instanceId",):
        value = getattr(request, name, None)
        if isinstance(value, str) and value:
            return value
    return None


def _oversize_message(method: str, size: int, limit: int) -> str:
    return (
        f"{method} request is {size} bytes, larger than the sidecar's maximum message size of {limit} bytes; "
        "start the sidecar with a larger --max-message-size (or Sidecar(max_message_bytes=...))"
    )


def _wrap_unary(method: str, function: Callable[[Any, grpc.ServicerContext], Any], limit: int) -> Callable[..., Any]:
    @functools.wraps(function)
    def handle(request: Any, context: grpc.ServicerContext) -> Any:
        if isinstance(request, _Oversize):
            logger.warning("Rejected %s: %d bytes exceeds the limit of %d bytes", method, request.size, limit)
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, _oversize_message(method, request.size, limit))
        with _errors_as_status(method, request, context):
            return function(request, context)

    return handle


def _wrap_stream(method: str, function: Callable[[Any, grpc.ServicerContext], Any], limit: int) -> Callable[..., Any]:
    @functools.wraps(function)
    def handle(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        if isinstance(request, _Oversize):
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, _oversize_message(method, request.size, limit))
        with _errors_as_status(method, request, context):
            yield from function(request, context)

    return handle


@contextlib.contextmanager
def _errors_as_status(method: str, request: Any, context: grpc.ServicerContext) -> Iterator[None]:
    """End the call with a request error's status, or INTERNAL for any other exception."""
    try:
        yield
    except RequestError as error:
        _log_rejection(method, error)
        context.abort(error.code, error.message)
    except Exception:
        logger.exception("%s failed for instance %s", method, _instance_id_of(request))
        context.abort(grpc.StatusCode.INTERNAL, f"{method} failed inside the sidecar; see the sidecar log")


def _log_rejection(method: str, error: RequestError) -> None:
    level = logging.INFO if isinstance(error, DeadlineExceeded) else logging.WARNING
    logger.log(level, "Rejected %s for instance %s: %s: %s", method, error.instance_id, error.code.name, error.message)


def _unsupported(method: str, feature: str) -> Callable[[Any, grpc.ServicerContext], Any]:
    def handle(request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{method}: this sidecar does not support {feature}")

    return handle


def _serialize(response: bytes | protobuf_message.Message) -> bytes:
    # Work items and history chunks are assembled in wire format already.
    return response if isinstance(response, bytes) else response.SerializeToString()


def build_handler(service: SidecarService, max_message_bytes: int) -> grpc.GenericRpcHandler[Any, Any]:
    """Build the gRPC handler for every method of the service descriptor."""
    descriptor = pb.DESCRIPTOR.services_by_name[SERVICE_NAME]
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
    for method in descriptor.methods:
        request_class = message_factory.GetMessageClass(method.input_type)

        def deserialize(data: bytes, request_class: Any = request_class) -> Any:
            if len(data) > max_message_bytes:
                return _Oversize(len(data))
            return request_class.FromString(data)

        function = getattr(service, method.name, None)
        if function is None:
            feature = _UNSUPPORTED.get(method.name, method.name)
            handlers[method.name] = grpc.unary_unary_rpc_method_handler(
                _unsupported(method.name, feature), request_deserializer=deserialize, response_serializer=_serialize
            )
        elif method.server_streaming:
            handlers[method.name] = grpc.unary_stream_rpc_method_handler(
                _wrap_stream(method.name, function, max_message_bytes),
                request_deserializer=deserialize,
                response_serializer=_serialize,
            )
        else:
            handlers[method.name] = grpc.unary_unary_rpc_method_handler(
                _wrap_unary(method.name, function, max_message_bytes),
                request_deserializer=deserialize,
                response_serializer=_serialize,
            )
    return grpc.method_handlers_generic_handler(SERVICE_NAME, handlers)
