"""Serve the official SDK's in-memory backend over gRPC on 127.0.0.1 only.

Run it with the interpreter of the environment that has the official
``durabletask`` package installed, never inside durable's own process: the
official generated protobuf module defines the same message names as ours.

The backend's own ``start()`` binds every interface, so this script builds the
gRPC server itself around the backend's servicer and binds the loopback
address. The first line on stdout is ``LISTENING 127.0.0.1:PORT``. SIGTERM or
SIGINT stops the server and the script exits with status 0.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from concurrent import futures
from types import FrameType

import grpc
from durabletask.internal import orchestrator_service_pb2_grpc as service_grpc
from durabletask.testing import InMemoryOrchestrationBackend

LOGGER = logging.getLogger("inmemory-sidecar")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--port", type=int, default=0,
        help="TCP port on 127.0.0.1 to listen on; 0 (the default) picks a free port",
    )
    parser.add_argument(
        "--max-workers", type=int, default=64,
        help="size of the gRPC server's thread pool (default 64); every connected "
             "worker stream and every pending wait call holds one thread",
    )
    parser.add_argument(
        "--max-message-bytes", type=int, default=None,
        help="maximum gRPC message size in bytes, sent and received "
             "(default: gRPC's own default, 4 MiB for received messages)",
    )
    parser.add_argument(
        "--max-history-size", type=int, default=10000,
        help="maximum number of history events per orchestration (default 10000)",
    )
    parser.add_argument(
        "--log-level", default="WARNING",
        help="logging level for the backend's messages on stderr (default WARNING)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )

    stop_requested = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        LOGGER.info("received signal %d, stopping", signum)
        stop_requested.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    options: list[tuple[str, int]] = []
    if args.max_message_bytes is not None:
        options.append(("grpc.max_receive_message_length", args.max_message_bytes))
        options.append(("grpc.max_send_message_length", args.max_message_bytes))

    # The port given to the constructor is used only by the backend's own
    # start(), which this script never calls.
    backend = InMemoryOrchestrationBackend(max_history_size=args.max_history_size)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=args.max_workers), options=options
    )
    service_grpc.add_TaskHubSidecarServiceServicer_to_server(backend, server)
    port = server.add_insecure_port(f"127.0.0.1:{args.port}")
    if port == 0:
        print(f"failed to bind 127.0.0.1:{args.port}: the port is in use; pass another --port, or 0 for a free one", file=sys.stderr)
        return 1
    server.start()

    print(f"LISTENING 127.0.0.1:{port}", flush=True)
    LOGGER.info("in-memory sidecar listening on 127.0.0.1:%d", port)

    stop_requested.wait()

    # With no server of its own, backend.stop() only wakes the GetWorkItems
    # loops so that the worker streams end. Calls still waiting for an
    # instance are cancelled when the grace period runs out.
    backend.stop()
    server.stop(grace=2).wait()
    LOGGER.info("in-memory sidecar stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
