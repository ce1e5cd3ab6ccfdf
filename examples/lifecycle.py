"""Suspend, resume and terminate running orchestrations from the client.

Run alone against a running sidecar:

    python -m examples.lifecycle --address 127.0.0.1:4001
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import durable
from examples._run import parse_address


class Countdown(durable.Orchestration[int, str]):
    """Counts events named "tick" until `goal` arrived; custom status shows progress."""

    async def run(self, goal: int) -> str:
        for count in range(1, goal + 1):
            await self.wait_for_event("tick")
            self.set_custom_status({"ticks": count})
        return f"{goal} ticks"


class Forever(durable.Orchestration[None, None]):
    """Sleeps on a long timer until a client terminates it."""

    async def run(self, value: None) -> None:
        await self.create_timer(timedelta(days=365))


def _status(handle: durable.OrchestrationHandle[Any]) -> str:
    state = handle.state()
    return state.status.name if state is not None else "unknown"


def _wait_for_status(handle: durable.OrchestrationHandle[Any], status: durable.OrchestrationStatus) -> None:
    # The sidecar shows a new status once the worker has processed the request.
    deadline = time.monotonic() + 30
    while _status(handle) != status.name:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{handle.instance_id} did not reach {status.name} within 30 s")
        time.sleep(0.05)


def main(address: str) -> dict[str, str]:
    outcome: dict[str, str] = {}
    with durable.Worker(address, orchestrations=[Countdown, Forever]), durable.Client(address) as client:
        countdown = client.start(Countdown, 2)
        countdown.wait_for_start(timeout=30)
        countdown.suspend(reason="maintenance")
        _wait_for_status(countdown, durable.OrchestrationStatus.SUSPENDED)
        # Events raised while suspended wait until the instance resumes.
        countdown.raise_event("tick")
        countdown.raise_event("tick")
        time.sleep(0.5)
        outcome["while suspended"] = _status(countdown)
        countdown.resume(reason="maintenance over")
        outcome["countdown"] = countdown.result(timeout=30)

        forever = client.start(Forever, None)
        forever.wait_for_start(timeout=30)
        forever.terminate(output="no longer needed")
        final = forever.wait(timeout=30)
        outcome["forever"] = final.status.name
    return outcome


if __name__ == "__main__":
    print(main(parse_address(__doc__ or "")))
