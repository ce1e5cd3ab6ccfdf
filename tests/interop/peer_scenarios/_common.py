"""Helpers shared by the scenario scripts, which run with the peer interpreter.

Each scenario script takes ``--address 127.0.0.1:PORT``, runs the official
``durabletask`` worker and client against that sidecar, and prints its
observations as one line ``RESULT {json}``. The scripts observe and never
judge: the pytest tests hold the expected values.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import grpc
from durabletask import client as dt_client
from durabletask import worker as dt_worker
from durabletask.grpc_options import GrpcWorkerResiliencyOptions

WAIT_TIMEOUT_SECONDS = 30.0

logging.basicConfig(
    level=logging.WARNING,
    stream=sys.stderr,
    format="%(asctime)s %(levelname)s %(name)s: %(message)s",
)
LOGGER = logging.getLogger("peer-scenario")


def parse_args(description: str, extra: Callable[[argparse.ArgumentParser], None] | None = None
               ) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--address", required=True, help="sidecar address, 127.0.0.1:PORT")
    if extra is not None:
        extra(parser)
    args = parser.parse_args()
    host = args.address.rsplit(":", 1)[0]
    if host not in ("127.0.0.1", "localhost"):
        parser.error(f"--address must be on 127.0.0.1, got {args.address!r}")
    return args


def new_client(address: str) -> dt_client.TaskHubGrpcClient:
    return dt_client.TaskHubGrpcClient(
        host_address=address, secure_channel=False, logger=logging.getLogger("peer-client"),
    )


def new_worker(address: str, thread_pool_size: int | None = None) -> dt_worker.TaskHubGrpcWorker:
    # A short reconnect back-off keeps the crash test quick after the sidecar restarts.
    resiliency = GrpcWorkerResiliencyOptions(
        reconnect_backoff_base_seconds=0.2,
        reconnect_backoff_cap_seconds=1.0,
    )
    concurrency = dt_worker.ConcurrencyOptions(maximum_thread_pool_workers=thread_pool_size)
    return dt_worker.TaskHubGrpcWorker(
        host_address=address, secure_channel=False,
        logger=logging.getLogger("peer-worker"), resiliency_options=resiliency,
        concurrency_options=concurrency,
    )


@contextmanager
def running_worker(address: str, orchestrators: list[Any], activities: list[Any],
                   thread_pool_size: int | None = None,
                   ) -> Iterator[tuple[dt_worker.TaskHubGrpcWorker, dt_client.TaskHubGrpcClient]]:
    """Start a worker hosting the given functions and yield it with a client."""
    worker = new_worker(address, thread_pool_size)
    for orchestrator in orchestrators:
        worker.add_orchestrator(orchestrator)
    for activity in activities:
        worker.add_activity(activity)
    client = new_client(address)
    worker.start()
    try:
        yield worker, client
    finally:
        worker.stop()
        client.close()


def decode(serialized: str | None) -> Any:
    if serialized is None or serialized == "":
        return None
    return json.loads(serialized)


def summarize(state: dt_client.OrchestrationState | None) -> dict[str, Any] | None:
    """Return the parts of an instance's state that the tests check, or None if it does not exist."""
    if state is None:
        return None
    failure = state.failure_details
    return {
        "name": state.name,
        "status": state.runtime_status.name,
        "input": decode(state.serialized_input),
        "output": decode(state.serialized_output),
        "custom_status": decode(state.serialized_custom_status),
        "failure_message": failure.message if failure is not None else None,
        "failure_type": failure.error_type if failure is not None else None,
    }


def wait_for_completion(client: dt_client.TaskHubGrpcClient, instance_id: str,
                        timeout: float = WAIT_TIMEOUT_SECONDS) -> dict[str, Any] | None:
    """Wait for an instance to end; on timeout, return its current state with ``timed_out``."""
    try:
        return summarize(client.wait_for_orchestration_completion(instance_id, timeout=timeout))
    except TimeoutError:
        summary = summarize(client.get_orchestration_state(instance_id))
        return {"timed_out": True, **(summary or {})}


def wait_for_status(client: dt_client.TaskHubGrpcClient, instance_id: str, statuses: set[str],
                    timeout: float = WAIT_TIMEOUT_SECONDS) -> dict[str, Any] | None:
    """Poll until the instance has one of ``statuses``; return its last observed state."""
    deadline = time.monotonic() + timeout
    summary = summarize(client.get_orchestration_state(instance_id))
    while time.monotonic() < deadline:
        if summary is not None and summary["status"] in statuses:
            return summary
        time.sleep(0.05)
        summary = summarize(client.get_orchestration_state(instance_id))
    return summary


def rpc_error_code(call: Callable[[], Any]) -> str | None:
    """Run ``call`` and return the gRPC status code name it failed with, or None if it succeeded."""
    try:
        call()
    except grpc.RpcError as error:
        return str(error.code().name)  # type: ignore[attr-defined]
    return None


def history_event_counts(client: dt_client.TaskHubGrpcClient, instance_id: str) -> dict[str, Any]:
    """Count the committed history events of an instance by class name (``TaskCompletedEvent`` ...).

    A failed request returns ``{"rpc_error": CODE}`` instead, for the test to report.
    """
    counts: dict[str, Any] = {}
    try:
        events = client.get_orchestration_history(instance_id)
    except grpc.RpcError as error:
        return {"rpc_error": error.code().name}  # type: ignore[attr-defined]
    for event in events:
        kind = type(event).__name__
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def emit(result: dict[str, Any]) -> None:
    print("RESULT " + json.dumps(result, sort_keys=True), flush=True)
