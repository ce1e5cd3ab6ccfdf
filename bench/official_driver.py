"""Run one benchmark workload with the official durabletask SDK's worker and client.

Run it with the peer interpreter (durabletask 1.12.0 installed), as a script,
so that `_scenarios` and `_measure` import from this folder. It takes the
same arguments as durable_driver.py and runs the same workloads.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# durabletask is installed only in the peer environment, not in durable's.
from durabletask import client as dt_client  # type: ignore[import-not-found,unused-ignore]
from durabletask import task  # type: ignore[import-not-found,unused-ignore]
from durabletask import worker as dt_worker  # type: ignore[import-not-found,unused-ignore]
from durabletask.grpc_options import GrpcChannelOptions  # type: ignore[import-not-found,unused-ignore]

import _scenarios

MAX_MESSAGE_BYTES = 64 * 1024 * 1024


def add_one(ctx: Any, value: int) -> int:
    return value + 1


def square(ctx: Any, value: int) -> int:
    return value * value


def bench_chain(ctx: Any, value: list[int]) -> Any:
    total, steps = value
    for _ in range(steps):
        total = yield ctx.call_activity(add_one, input=total)
    return total


def bench_sequential(ctx: Any, steps: int) -> Any:
    total = 0
    for _ in range(steps):
        total = yield ctx.call_activity(add_one, input=total)
    return total


def bench_fan_out(ctx: Any, count: int) -> Any:
    squares = yield task.when_all([ctx.call_activity(square, input=i) for i in range(count)])
    return sum(squares)


def bench_timer(ctx: Any, index: int) -> Any:
    due = ctx.current_utc_datetime + _scenarios.TIMER_DELAY
    yield ctx.create_timer(_scenarios.TIMER_DELAY)
    return due.isoformat()


def bench_event(ctx: Any, index: int) -> Any:
    value = yield ctx.wait_for_external_event(_scenarios.EVENT_NAME)
    return value


ORCHESTRATORS = {
    _scenarios.CHAIN: bench_chain,
    _scenarios.SEQUENTIAL: bench_sequential,
    _scenarios.FAN_OUT: bench_fan_out,
    _scenarios.TIMER: bench_timer,
    _scenarios.EVENT: bench_event,
}


@dataclass(frozen=True)
class OfficialOutcome:
    status: str
    output: Any
    completed_at: datetime | None


def _channel_options() -> GrpcChannelOptions:
    return GrpcChannelOptions(
        max_receive_message_length=MAX_MESSAGE_BYTES, max_send_message_length=MAX_MESSAGE_BYTES,
    )


class OfficialAdapter:
    """The official SDK's worker and client on one sidecar, with its default concurrency."""

    def __init__(self, address: str) -> None:
        self.worker = dt_worker.TaskHubGrpcWorker(
            host_address=address, secure_channel=False, channel_options=_channel_options(),
            logger=logging.getLogger("official-worker"),
        )
        for orchestrator in ORCHESTRATORS.values():
            self.worker.add_orchestrator(orchestrator)
        self.worker.add_activity(add_one)
        self.worker.add_activity(square)
        self.client = dt_client.TaskHubGrpcClient(
            host_address=address, secure_channel=False, channel_options=_channel_options(),
            logger=logging.getLogger("official-client"),
        )
        self.worker.start()

    def start(self, kind: str, input: Any, instance_id: str) -> None:
        self.client.schedule_new_orchestration(ORCHESTRATORS[kind], input=input, instance_id=instance_id)

    def wait_for_start(self, instance_id: str, timeout: float) -> str:
        state = self.client.wait_for_orchestration_start(instance_id, timeout=int(max(1, timeout)))
        if state is None:
            return "NOT_FOUND"
        return str(state.runtime_status.name)

    def wait_for_completion(self, instance_id: str, timeout: float) -> OfficialOutcome:
        state = self.client.wait_for_orchestration_completion(instance_id, timeout=int(max(1, timeout)))
        if state is None:
            return OfficialOutcome("NOT_FOUND", None, None)
        output = json.loads(state.serialized_output) if state.serialized_output else None
        return OfficialOutcome(str(state.runtime_status.name), output, state.last_updated_at)

    def raise_event(self, instance_id: str, name: str, data: Any) -> None:
        self.client.raise_orchestration_event(instance_id, name, data=data)

    def terminate(self, instance_id: str) -> None:
        self.client.terminate_orchestration(instance_id)

    def purge(self, instance_id: str) -> None:
        self.client.purge_orchestration(instance_id)

    def extra_metrics(self) -> dict[str, Any]:
        return {}

    def stop(self) -> None:
        self.worker.stop()
        self.client.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    _scenarios.main(OfficialAdapter)
