"""The asyncio client: the same surface as `Client`, on grpc.aio."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, Generic, TypeVar, cast, overload

import grpc
import grpc.aio

from durable import _client_common as common
from durable import _json
from durable._channel import ChannelSettings, open_aio_channel
from durable._orchestration import Event, Orchestration
from durable._proto import orchestrator_service_pb2 as pb
from durable._proto import orchestrator_service_pb2_grpc as pb_grpc
from durable._runtime import current_step
from durable._state import InstanceNotFoundError, OrchestrationState, OrchestrationStatus, state_from_proto

__all__ = ["AsyncClient", "AsyncOrchestrationHandle"]

In = TypeVar("In")
Out = TypeVar("Out")
T = TypeVar("T")

_DEFAULT_TIMEOUT = common.DEFAULT_WAIT_TIMEOUT


class AsyncOrchestrationHandle(Generic[Out]):
    """One orchestration instance, seen from an `AsyncClient`; every method is a coroutine."""

    def __init__(
        self, client: AsyncClient, instance_id: str, orchestration: type[Orchestration[Any, Out]] | None = None
    ) -> None:
        self._client = client
        self._orchestration = orchestration
        self.instance_id = instance_id

    def __repr__(self) -> str:
        name = self._orchestration.__durable_name__ if self._orchestration is not None else "?"
        return f"<AsyncOrchestrationHandle {name} {self.instance_id!r}>"

    async def state(self) -> OrchestrationState | None:
        """Return the instance's current state, or None if the sidecar does not know it."""
        return await self._client.get_state(self.instance_id, self._orchestration)

    async def wait_for_start(self, timeout: float | None = _DEFAULT_TIMEOUT) -> OrchestrationState:
        """Wait until the instance is no longer PENDING; TimeoutError after `timeout` seconds."""
        return await self._client.wait_for_start(self.instance_id, timeout=timeout, orchestration=self._orchestration)

    async def wait(self, timeout: float | None = _DEFAULT_TIMEOUT) -> OrchestrationState:
        """Wait until the instance completed, failed or was terminated; TimeoutError after `timeout` seconds."""
        return await self._client.wait_for_completion(
            self.instance_id, timeout=timeout, orchestration=self._orchestration
        )

    async def result(self, timeout: float | None = _DEFAULT_TIMEOUT) -> Out:
        """Wait for the instance to finish and return its decoded output.

        Raises `OrchestrationFailedError` (with the failure details) if it
        failed or was terminated, and TimeoutError after `timeout` seconds.
        """
        state = await self.wait(timeout)
        output_type = self._orchestration.__durable_machine__.output_type if self._orchestration else None
        return cast(
            Out,
            common.result_of(state.instance_id, state.status, state.raw_output, state.failure_details, output_type),
        )

    @overload
    async def raise_event(self, event: Event[T], data: T) -> None: ...
    @overload
    async def raise_event(self, event: str, data: object = None) -> None: ...

    async def raise_event(self, event: Event[Any] | str, data: object = None) -> None:
        """Send an external event to the instance (an `Event[T]` declared on the class, or a name)."""
        await self._client.raise_event(self.instance_id, event, data)

    async def terminate(self, output: object = None, *, recursive: bool = True) -> None:
        """Terminate the instance (and, with `recursive`, its sub-orchestrations)."""
        await self._client.terminate(self.instance_id, output, recursive=recursive)

    async def suspend(self, reason: str | None = None) -> None:
        """Suspend the instance; events are held until it is resumed."""
        await self._client.suspend(self.instance_id, reason)

    async def resume(self, reason: str | None = None) -> None:
        """Resume a suspended instance."""
        await self._client.resume(self.instance_id, reason)


class AsyncClient:
    """Starts and manages orchestration instances through a sidecar, with asyncio.

    Same methods, arguments and errors as `Client`, as coroutines; `query`
    is an async iterator. Create and use it inside one running event loop.
    `OrchestrationState.current_step` is fetched while the state is built (for
    multi-step classes only), since a property cannot await.
    """

    def __init__(
        self,
        address: str,
        *,
        secure: bool = False,
        root_certificates: bytes | None = None,
        metadata: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        max_message_bytes: int | None = None,
    ) -> None:
        self._settings = ChannelSettings.build(
            address,
            secure=secure,
            root_certificates=root_certificates,
            metadata=metadata,
            max_message_bytes=max_message_bytes,
        )
        self._metadata = self._settings.metadata
        self._channel = open_aio_channel(self._settings)
        self._stub = pb_grpc.TaskHubSidecarServiceStub(self._channel)

    async def close(self) -> None:
        """Close the channel; the client cannot be used afterwards."""
        await self._channel.close(None)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # ------------------------------------------------------------ starting

    @overload
    async def start(
        self,
        orchestration: type[Orchestration[In, Out]],
        input: In,
        *,
        instance_id: str | None = None,
        start_at: datetime | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> AsyncOrchestrationHandle[Out]: ...
    @overload
    async def start(
        self,
        orchestration: str,
        input: object = None,
        *,
        instance_id: str | None = None,
        start_at: datetime | None = None,
        tags: Mapping[str, str] | None = None,
        version: str | None = None,
    ) -> AsyncOrchestrationHandle[Any]: ...

    async def start(
        self,
        orchestration: type[Orchestration[Any, Any]] | str,
        input: object = None,
        *,
        instance_id: str | None = None,
        start_at: datetime | None = None,
        tags: Mapping[str, str] | None = None,
        version: str | None = None,
    ) -> AsyncOrchestrationHandle[Any]:
        """Schedule a new instance and return its handle (see `Client.start`)."""
        if isinstance(orchestration, str):
            cls = None
            name, input_text = orchestration, _json.encode(input)
        else:
            cls = orchestration
            name, version = cls.__durable_name__, cls.__durable_version__
            input_text = _json.encode(input, cls.__durable_machine__.input_type)
        request = common.start_request(name, version, input_text, instance_id, start_at, tags)
        try:
            reply = await self._stub.StartInstance(request, metadata=self._metadata)
        except grpc.RpcError as error:
            common.raise_rpc_error(error, request.instanceId, f"start orchestration {name!r}", self._settings.target)
        return AsyncOrchestrationHandle(self, reply.instanceId or request.instanceId, cls)

    @overload
    def get_handle(
        self, instance_id: str, orchestration: type[Orchestration[In, Out]]
    ) -> AsyncOrchestrationHandle[Out]: ...
    @overload
    def get_handle(self, instance_id: str) -> AsyncOrchestrationHandle[Any]: ...

    def get_handle(
        self, instance_id: str, orchestration: type[Orchestration[Any, Any]] | None = None
    ) -> AsyncOrchestrationHandle[Any]:
        """Return a handle to an existing instance, typed by its class when given (no call is made)."""
        return AsyncOrchestrationHandle(self, instance_id, orchestration)

    # ------------------------------------------------------------ reading state

    async def get_state(
        self,
        instance_id: str,
        orchestration: type[Orchestration[Any, Any]] | None = None,
        *,
        fetch_payloads: bool = True,
    ) -> OrchestrationState | None:
        """Return the instance's state, or None if the sidecar does not know the id (see `Client.get_state`)."""
        try:
            reply = await self._stub.GetInstance(
                pb.GetInstanceRequest(instanceId=instance_id, getInputsAndOutputs=fetch_payloads),
                metadata=self._metadata,
            )
        except grpc.RpcError as error:
            common.raise_rpc_error(error, instance_id, "read the state", self._settings.target)
        if not reply.exists:
            return None
        return await self._state(reply.orchestrationState, orchestration)

    async def wait_for_start(
        self,
        instance_id: str,
        *,
        timeout: float | None = _DEFAULT_TIMEOUT,
        orchestration: type[Orchestration[Any, Any]] | None = None,
    ) -> OrchestrationState:
        """Wait until the instance is no longer PENDING and return its state (see `Client.wait_for_start`)."""
        return await self._wait(
            self._stub.WaitForInstanceStart, instance_id, timeout, orchestration, "start",
            lambda status: status is not OrchestrationStatus.PENDING,
        )

    async def wait_for_completion(
        self,
        instance_id: str,
        *,
        timeout: float | None = _DEFAULT_TIMEOUT,
        orchestration: type[Orchestration[Any, Any]] | None = None,
    ) -> OrchestrationState:
        """Wait until the instance finished and return its state (see `Client.wait_for_completion`)."""
        return await self._wait(
            self._stub.WaitForInstanceCompletion, instance_id, timeout, orchestration, "complete",
            lambda status: status.is_terminal,
        )

    async def _wait(
        self,
        method: grpc.aio.UnaryUnaryMultiCallable[pb.GetInstanceRequest, pb.GetInstanceResponse],
        instance_id: str,
        timeout: float | None,
        orchestration: type[Orchestration[Any, Any]] | None,
        verb: str,
        reached: Callable[[OrchestrationStatus], bool],
    ) -> OrchestrationState:
        deadline = None if timeout is None else time.monotonic() + timeout
        request = pb.GetInstanceRequest(instanceId=instance_id, getInputsAndOutputs=True)
        while True:
            remaining = common.WAIT_SLICE if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                assert timeout is not None
                raise await self._timeout(instance_id, verb, timeout)
            try:
                reply = await method(request, timeout=min(remaining, common.WAIT_SLICE), metadata=self._metadata)
            except grpc.RpcError as error:
                if common.is_wait_expired(error):
                    continue
                common.raise_rpc_error(error, instance_id, f"wait for the instance to {verb}", self._settings.target)
            if not reply.exists:
                raise InstanceNotFoundError(instance_id)
            if reached(OrchestrationStatus.from_proto(reply.orchestrationState.orchestrationStatus)):
                return await self._state(reply.orchestrationState, orchestration)

    async def _timeout(self, instance_id: str, verb: str, timeout: float) -> Exception:
        state = await self.get_state(instance_id, fetch_payloads=False)
        if state is None:
            return InstanceNotFoundError(instance_id)
        return common.timeout_error(instance_id, verb, timeout, state.status)

    async def _state(
        self, proto: pb.OrchestrationState, orchestration: type[Orchestration[Any, Any]] | None
    ) -> OrchestrationState:
        cls = orchestration or common.lookup_class(proto.name, proto.version.value if proto.HasField("version") else None)
        if cls is None:
            return state_from_proto(proto)
        machine = cls.__durable_machine__
        status = OrchestrationStatus.from_proto(proto.orchestrationStatus)
        known, step = common.step_is_known_without_history(machine, status)
        if not known:
            step = await self._current_step(proto.instanceId, cls)
        return state_from_proto(
            proto, input_type=machine.input_type, output_type=machine.output_type, step_loader=lambda: step
        )

    async def _current_step(self, instance_id: str, orchestration: type[Orchestration[Any, Any]]) -> str | None:
        request = pb.StreamInstanceHistoryRequest(instanceId=instance_id)
        history: list[pb.HistoryEvent] = []
        try:
            async for chunk in self._stub.StreamInstanceHistory(request, metadata=self._metadata):
                history.extend(chunk.events)
        except grpc.RpcError as error:
            if error.code() is grpc.StatusCode.NOT_FOUND:
                return None
            common.raise_rpc_error(error, instance_id, "read the history", self._settings.target)
        return current_step(orchestration, instance_id, history)

    async def query(
        self,
        *,
        statuses: Iterable[OrchestrationStatus] | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        instance_id_prefix: str | None = None,
        fetch_payloads: bool = False,
        page_size: int = 100,
    ) -> AsyncIterator[OrchestrationState]:
        """Iterate over every instance matching the filters, page by page (see `Client.query`)."""
        status_filter = list(statuses) if statuses is not None else None
        token: str | None = None
        while True:
            request = common.query_request(
                status_filter, created_from, created_to, instance_id_prefix, fetch_payloads, page_size, token
            )
            try:
                reply = await self._stub.QueryInstances(request, metadata=self._metadata)
            except grpc.RpcError as error:
                common.raise_rpc_error(error, None, "query instances", self._settings.target)
            for proto in reply.orchestrationState:
                yield await self._state(proto, None)
            token = common.next_page_token(reply, token)
            if token is None:
                return

    # ------------------------------------------------------------ control

    @overload
    async def raise_event(self, instance_id: str, event: Event[T], data: T) -> None: ...
    @overload
    async def raise_event(self, instance_id: str, event: str, data: object = None) -> None: ...

    async def raise_event(self, instance_id: str, event: Event[Any] | str, data: object = None) -> None:
        """Send an external event to an instance; `data` is encoded with the event's declared type."""
        request = common.event_request(instance_id, event, data)
        try:
            await self._stub.RaiseEvent(request, metadata=self._metadata)
        except grpc.RpcError as error:
            common.raise_rpc_error(error, instance_id, f"raise event {request.name!r}", self._settings.target)

    async def terminate(self, instance_id: str, output: object = None, *, recursive: bool = True) -> None:
        """Terminate an instance; with `recursive`, its sub-orchestrations too (see `Client.terminate`)."""
        await self._require(instance_id, "terminate")
        try:
            await self._stub.TerminateInstance(
                common.terminate_request(instance_id, output, recursive), metadata=self._metadata
            )
        except grpc.RpcError as error:
            common.raise_rpc_error(error, instance_id, "terminate", self._settings.target)

    async def suspend(self, instance_id: str, reason: str | None = None) -> None:
        """Suspend an instance: new events stay queued until it is resumed."""
        request = pb.SuspendRequest(instanceId=instance_id)
        if reason is not None:
            request.reason.value = reason
        try:
            await self._stub.SuspendInstance(request, metadata=self._metadata)
        except grpc.RpcError as error:
            common.raise_rpc_error(error, instance_id, "suspend", self._settings.target)

    async def resume(self, instance_id: str, reason: str | None = None) -> None:
        """Resume a suspended instance."""
        request = pb.ResumeRequest(instanceId=instance_id)
        if reason is not None:
            request.reason.value = reason
        try:
            await self._stub.ResumeInstance(request, metadata=self._metadata)
        except grpc.RpcError as error:
            common.raise_rpc_error(error, instance_id, "resume", self._settings.target)

    async def restart(self, instance_id: str, *, new_instance_id: bool = False) -> str:
        """Run a finished instance again with its original input; return the id of the new run."""
        request = pb.RestartInstanceRequest(instanceId=instance_id, restartWithNewInstanceId=new_instance_id)
        try:
            reply = await self._stub.RestartInstance(request, metadata=self._metadata)
        except grpc.RpcError as error:
            common.raise_rpc_error(error, instance_id, "restart", self._settings.target)
        return reply.instanceId

    async def purge(self, instance_id: str, *, recursive: bool = True) -> int:
        """Delete a finished instance (see `Client.purge`); return how many instances were deleted."""
        request = pb.PurgeInstancesRequest(instanceId=instance_id, recursive=recursive, isOrchestration=True)
        try:
            reply = await self._stub.PurgeInstances(request, metadata=self._metadata)
        except grpc.RpcError as error:
            if error.code() is grpc.StatusCode.NOT_FOUND:
                return 0
            common.raise_rpc_error(error, instance_id, "purge", self._settings.target)
        return reply.deletedInstanceCount

    async def purge_where(
        self,
        *,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        statuses: Iterable[OrchestrationStatus] | None = None,
        recursive: bool = False,
    ) -> int:
        """Delete every finished instance matching the filters (see `Client.purge_where`)."""
        request = common.purge_filter_request(created_from, created_to, statuses, recursive)
        deleted = 0
        while True:
            try:
                reply = await self._stub.PurgeInstances(request, metadata=self._metadata)
            except grpc.RpcError as error:
                common.raise_rpc_error(error, None, "purge instances", self._settings.target)
            deleted += reply.deletedInstanceCount
            partial = reply.HasField("isComplete") and not reply.isComplete.value
            if not partial or reply.deletedInstanceCount == 0:
                return deleted

    async def _require(self, instance_id: str, action: str) -> None:
        try:
            reply = await self._stub.GetInstance(
                pb.GetInstanceRequest(instanceId=instance_id, getInputsAndOutputs=False), metadata=self._metadata
            )
        except grpc.RpcError as error:
            common.raise_rpc_error(error, instance_id, action, self._settings.target)
        if not reply.exists:
            raise InstanceNotFoundError(instance_id, f"cannot {action}: orchestration instance {instance_id!r} not found")
