"""Run one benchmark workload with durable's worker and client.

Run it with durable's interpreter, as a script, so that `_scenarios` and
`_measure` import from this folder:
``python bench/durable_driver.py --address 127.0.0.1:PORT --sidecar-pid PID
--workload chain --params '{"instances": 20, "steps": 3}' --run-id r1 --budget 60``.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timedelta
from typing import Any

import attrs

import durable
from durable._client import Client
from durable._worker import Worker

import _scenarios

# Both sidecars are started with this limit too: a 10,000-activity fan-out
# sends a work item of several MiB.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


@durable.activity
def add_one(ctx: durable.ActivityContext, value: int) -> int:
    return value + 1


@durable.activity
def square(ctx: durable.ActivityContext, value: int) -> int:
    return value * value


class BenchChain(durable.Orchestration[list[int], int]):
    """Input [start, steps]: add one `steps` times, one activity after another."""

    async def run(self, value: list[int]) -> int:
        total, steps = value
        for _ in range(steps):
            total = await self.call_activity(add_one, total)
        return total


class BenchSequential(durable.Orchestration[int, int]):
    """Count to `steps` with one activity per step, so the history grows with every step."""

    async def run(self, steps: int) -> int:
        total = 0
        for _ in range(steps):
            total = await self.call_activity(add_one, total)
        return total


class BenchFanOut(durable.Orchestration[int, int]):
    """Square 0..count-1 in parallel activities and return the sum."""

    async def run(self, count: int) -> int:
        squares = await durable.when_all([self.call_activity(square, i) for i in range(count)])
        return sum(squares)


class BenchTimer(durable.Orchestration[int, str]):
    """Wait on a 1 s timer and return its due time (ISO 8601, UTC)."""

    async def run(self, index: int) -> str:
        due = self.now() + _scenarios.TIMER_DELAY
        await self.create_timer(_scenarios.TIMER_DELAY)
        return due.isoformat()


class BenchEvent(durable.Orchestration[int, int]):
    """Wait for the event "go" and return its data."""

    async def run(self, index: int) -> int:
        return await self.wait_for_event(_scenarios.EVENT_NAME, int)


ORCHESTRATIONS: dict[str, type[durable.Orchestration[Any, Any]]] = {
    _scenarios.CHAIN: BenchChain,
    _scenarios.SEQUENTIAL: BenchSequential,
    _scenarios.FAN_OUT: BenchFanOut,
    _scenarios.TIMER: BenchTimer,
    _scenarios.EVENT: BenchEvent,
}


@attrs.frozen
class DurableOutcome:
    status: str
    output: Any
    completed_at: datetime | None


class DurableAdapter:
    """durable's worker and client on one sidecar."""

    def __init__(self, address: str) -> None:
        self.worker = Worker(
            address,
            orchestrations=list(ORCHESTRATIONS.values()),
            activities=[add_one, square],
            max_message_bytes=MAX_MESSAGE_BYTES,
        )
        self.client = Client(address, max_message_bytes=MAX_MESSAGE_BYTES)
        self.worker.start()

    def start(self, kind: str, input: Any, instance_id: str) -> None:
        self.client.start(ORCHESTRATIONS[kind], input, instance_id=instance_id)

    def wait_for_start(self, instance_id: str, timeout: float) -> str:
        return self.client.wait_for_start(instance_id, timeout=timeout).status.name

    def wait_for_completion(self, instance_id: str, timeout: float) -> DurableOutcome:
        state = self.client.wait_for_completion(instance_id, timeout=timeout)
        output = json.loads(state.raw_output) if state.raw_output else None
        return DurableOutcome(state.status.name, output, state.completed_at or state.last_updated_at)

    def raise_event(self, instance_id: str, name: str, data: Any) -> None:
        self.client.raise_event(instance_id, name, data)

    def terminate(self, instance_id: str) -> None:
        self.client.terminate(instance_id)

    def purge(self, instance_id: str) -> None:
        self.client.purge(instance_id)

    def extra_metrics(self) -> dict[str, Any]:
        cache = getattr(self.worker, "_replay_cache", None)
        if cache is None:
            return {"replay_cache": None}
        return {"replay_cache_hits": cache.hits, "replay_cache_misses": cache.misses}

    def stop(self) -> None:
        self.worker.stop(timeout=10)
        self.client.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    _scenarios.main(DurableAdapter)
