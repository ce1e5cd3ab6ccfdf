"""A pass-through gRPC proxy on 127.0.0.1 for tests that need to control the server side.

Every call to `/TaskHubSidecarService/*` is forwarded, as raw bytes, to the
sidecar under test. The proxy records the metadata each call carried and can
end every open work-item stream with a status of the test's choice, which is
what a sidecar does when it cancels a stream.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any

import grpc

_STREAMING = frozenset({"/TaskHubSidecarService/GetWorkItems", "/TaskHubSidecarService/StreamInstanceHistory"})


class GrpcProxy:
    """Forward Durable Task calls to `upstream`; `address` is where clients connect."""

    def __init__(self, upstream: str) -> None:
        self._channel = grpc.insecure_channel(
            upstream,
            options=[("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)],
        )
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=32, thread_name_prefix="test-proxy"),
            handlers=[_Handler(self)],
            options=[("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)],
        )
        port = self._server.add_insecure_port("127.0.0.1:0")
        self.address = f"127.0.0.1:{port}"
        self._lock = threading.Lock()
        self._streams: list[grpc.Call] = []
        self._cut_code: grpc.StatusCode | None = None
        self.calls: list[tuple[str, tuple[tuple[str, str], ...]]] = []
        self.stream_count = 0

    def start(self) -> GrpcProxy:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop(grace=None).wait()
        self._channel.close()

    def __enter__(self) -> GrpcProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def cut_streams(self, code: grpc.StatusCode = grpc.StatusCode.CANCELLED) -> int:
        """End every open work-item stream with `code`; return how many were open."""
        with self._lock:
            self._cut_code = code
            streams, self._streams = self._streams, []
        for call in streams:
            call.cancel()  # type: ignore[no-untyped-call]
        return len(streams)

    def record(self, method: str, metadata: tuple[tuple[str, str], ...]) -> None:
        with self._lock:
            self.calls.append((method, metadata))

    def unary(self, method: str) -> Callable[[bytes, grpc.ServicerContext], bytes]:
        upstream = self._channel.unary_unary(method, None, None)

        def forward(request: bytes, context: grpc.ServicerContext) -> bytes:
            metadata = _user_metadata(context)
            self.record(method, metadata)
            try:
                return upstream(request, metadata=metadata, timeout=_remaining(context))  # type: ignore[no-any-return]
            except grpc.RpcError as error:
                context.abort(error.code(), error.details() or "")
                raise  # unreachable: abort raises

        return forward

    def stream(self, method: str) -> Callable[[bytes, grpc.ServicerContext], Iterator[bytes]]:
        upstream = self._channel.unary_stream(method, None, None)

        def forward(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
            metadata = _user_metadata(context)
            self.record(method, metadata)
            call: Any = upstream(request, metadata=metadata)
            if method.endswith("/GetWorkItems"):
                with self._lock:
                    self._streams.append(call)
                    self.stream_count += 1
            context.add_callback(call.cancel)
            try:
                yield from call
            except grpc.RpcError as error:
                with self._lock:
                    code = self._cut_code
                if error.code() is grpc.StatusCode.CANCELLED and code is not None:
                    context.abort(code, "the proxy ended the stream")
                context.abort(error.code(), error.details() or "")

        return forward


class _Handler(grpc.GenericRpcHandler):  # type: ignore[type-arg]
    def __init__(self, proxy: GrpcProxy) -> None:
        self._proxy = proxy

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler[Any, Any] | None:
        method = handler_call_details.method
        if not method.startswith("/TaskHubSidecarService/"):
            return None
        if method in _STREAMING:
            return grpc.unary_stream_rpc_method_handler(self._proxy.stream(method))
        return grpc.unary_unary_rpc_method_handler(self._proxy.unary(method))


def _remaining(context: grpc.ServicerContext) -> float | None:
    # A call without a deadline reports an enormous remaining time.
    remaining = context.time_remaining()
    return remaining if remaining is not None and remaining < 1e6 else None


def _user_metadata(context: grpc.ServicerContext) -> tuple[tuple[str, str], ...]:
    return tuple(
        (key, str(value))
        for key, value in context.invocation_metadata()
        if not key.startswith((":", "grpc-")) and key != "user-agent"
    )
