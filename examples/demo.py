"""The first thing to run: a real orchestration on the embedded sidecar, step by step.

`make demo` runs this module. It starts durable's embedded sidecar on a SQLite
file, starts a worker, runs the order example, prints its input, each step as
the instance enters it and the result, then stops everything it started. It
exits with status 1 if anything fails.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import durable
from examples.order import ACTIVITIES, Order, ProcessOrder


def run_demo() -> int:
    with tempfile.TemporaryDirectory(prefix="durable-demo-") as folder:
        db = Path(folder) / "demo.db"
        with durable.Sidecar(db=str(db)) as sidecar:
            print(f"sidecar   listening on {sidecar.address}, storing in {db}")
            with durable.Worker(sidecar.address, orchestrations=[ProcessOrder], activities=ACTIVITIES):
                print("worker    hosting ProcessOrder and its activities")
                with durable.Client(sidecar.address) as client:
                    return _run_order(client)


def _run_order(client: durable.Client) -> int:
    order = Order("a-17", "lamp", 2, "4242")
    print(f"input     {order}")
    handle = client.start(ProcessOrder, order)
    last_step: str | None = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = handle.state()
        if state is None:
            print(f"error     instance {handle.instance_id} disappeared", file=sys.stderr)
            return 1
        step = state.current_step
        if step is not None and step != last_step:
            print(f"step      {step}")
            last_step = step
        if state.status.is_terminal:
            break
        time.sleep(0.05)
    else:
        print(f"error     {handle.instance_id} did not finish within 60 s", file=sys.stderr)
        return 1

    try:
        receipt = handle.result(timeout=5)
    except durable.OrchestrationFailedError as error:
        print(f"error     {error}", file=sys.stderr)
        return 1
    print(f"result    {receipt}")
    return 0


if __name__ == "__main__":
    sys.exit(run_demo())
