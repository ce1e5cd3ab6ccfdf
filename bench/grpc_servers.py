"""Server CPU per unary call: grpcio's synchronous server against its asyncio server.

Our sidecar serves every RPC on grpcio's synchronous server. This measures
what the server process spends on an empty unary call (`Hello`) with each of
grpcio's two Python servers, so that a move to `grpc.aio` can be judged on a
number. Each round starts a fresh server process per kind and sends it the
same calls, in batches of concurrent calls, from this process.

Usage: ``python -m bench.grpc_servers [--calls 4000] [--batch 50] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from concurrent import futures
from typing import Any

import grpc
from google.protobuf import empty_pb2

from bench._measure import own_cpu_seconds
from durable._proto import orchestrator_service_pb2_grpc as pb_grpc

KINDS = ("sync", "aio")
SERVICE_NAME = "TaskHubSidecarService"
# The synchronous server's pool size matches our sidecar's default.
SYNC_POOL_THREADS = 128


def _hello(request: empty_pb2.Empty, context: grpc.ServicerContext) -> empty_pb2.Empty:
    return empty_pb2.Empty()


async def _hello_async(request: empty_pb2.Empty, context: Any) -> empty_pb2.Empty:
    return empty_pb2.Empty()


def _handler(behaviour: Any) -> grpc.GenericRpcHandler[Any, Any]:
    # Only Hello is served, so the server needs no full servicer.
    method = grpc.unary_unary_rpc_method_handler(
        behaviour,
        request_deserializer=empty_pb2.Empty.FromString,
        response_serializer=empty_pb2.Empty.SerializeToString,
    )
    return grpc.method_handlers_generic_handler(SERVICE_NAME, {"Hello": method})


def _answer_cpu_queries() -> None:
    # Each line from the parent requests this process's CPU time.
    for _ in sys.stdin:
        print(f"{own_cpu_seconds():.6f}", flush=True)


def serve_sync() -> None:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=SYNC_POOL_THREADS))
    server.add_generic_rpc_handlers((_handler(_hello),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    _answer_cpu_queries()
    server.stop(None)


async def serve_aio() -> None:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((_handler(_hello_async),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(port, flush=True)
    # The stdin loop runs on a thread so that the event loop keeps serving.
    await asyncio.get_running_loop().run_in_executor(None, _answer_cpu_queries)
    await server.stop(None)


def measure(kind: str, calls: int, batch: int) -> tuple[float, float]:
    """Start a `kind` server and send it `calls` empty calls. Return (server CPU s, wall s)."""
    server = subprocess.Popen(
        [sys.executable, "-m", "bench.grpc_servers", "--serve", kind],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert server.stdin is not None and server.stdout is not None
    try:
        port = server.stdout.readline().strip()
        if not port.isdigit():
            raise RuntimeError(f"the {kind} server printed {port!r} instead of its port")

        def server_cpu() -> float:
            assert server.stdin is not None and server.stdout is not None
            server.stdin.write("cpu\n")
            server.stdin.flush()
            return float(server.stdout.readline())

        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.TaskHubSidecarServiceStub(channel)
            stub.Hello(empty_pb2.Empty(), timeout=10)
            cpu_before = server_cpu()
            started = time.perf_counter()
            for first in range(0, calls, batch):
                pending = [stub.Hello.future(empty_pb2.Empty()) for _ in range(min(batch, calls - first))]
                for call in pending:
                    call.result(timeout=30)
            wall = time.perf_counter() - started
            cpu = server_cpu() - cpu_before
        return cpu, wall
    finally:
        server.stdin.close()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.grpc_servers", description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=4000, help="empty unary calls per measurement (default 4000)")
    parser.add_argument("--batch", type=int, default=50, help="calls in flight at once (default 50)")
    parser.add_argument("--rounds", type=int, default=3, help="measurements per server kind (default 3)")
    parser.add_argument("--serve", choices=KINDS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve == "sync":
        serve_sync()
        return 0
    if args.serve == "aio":
        asyncio.run(serve_aio())
        return 0
    for name in ("calls", "batch", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}")

    results: dict[str, list[tuple[float, float]]] = {kind: [] for kind in KINDS}
    for round_index in range(args.rounds):
        for kind in KINDS:
            cpu, wall = measure(kind, args.calls, args.batch)
            results[kind].append((cpu, wall))
            print(f"round {round_index + 1}/{args.rounds}, {kind}: server CPU {cpu:.2f} s, wall {wall:.2f} s",
                  file=sys.stderr, flush=True)

    print(f"grpcio {grpc.__version__}, {args.calls} empty unary calls, {args.batch} in flight, "
          f"median of {args.rounds} rounds\n")
    print("| server | server CPU µs per call | wall µs per call |")
    print("| --- | --- | --- |")
    for kind in KINDS:
        cpu = statistics.median(cpu for cpu, _ in results[kind])
        wall = statistics.median(wall for _, wall in results[kind])
        label = "grpc.server (thread pool)" if kind == "sync" else "grpc.aio.server"
        print(f"| {label} | {cpu / args.calls * 1e6:.0f} | {wall / args.calls * 1e6:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
