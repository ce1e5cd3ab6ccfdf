"""The benchmark workloads, written once against a small client interface.

Both drivers (durable's and the official SDK's) implement `SdkAdapter` with
their own worker and client, then call `main()`. Each workload starts its
instances, waits for them, checks every status and output, and raises
`CheckFailedError` on the first wrong result. `main()` times the workload and
prints one `RESULT {json}` line on stdout.

Standard library only, because the official driver imports it from the peer
environment.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from _measure import own_cpu_seconds, process_cpu_seconds, resident_bytes

# Orchestration kinds that every adapter hosts.
CHAIN = "chain"
FAN_OUT = "fan_out"
SEQUENTIAL = "sequential"
TIMER = "timer"
EVENT = "event"

EVENT_NAME = "go"
TIMER_DELAY = timedelta(seconds=1)
# How long the idle workload lets the worker and sidecar settle before reading memory.
IDLE_SETTLE_SECONDS = 1.0
MAX_REPORTED_FAILURES = 5


class CheckFailedError(Exception):
    """An instance ended with a wrong status or output."""


class BudgetExceededError(Exception):
    """The workload did not finish within its time budget."""


class Outcome(Protocol):
    """The end state of an instance: status name (COMPLETED ...), decoded output and completion time."""

    @property
    def status(self) -> str: ...

    @property
    def output(self) -> Any: ...

    @property
    def completed_at(self) -> datetime | None: ...


class SdkAdapter(Protocol):
    """One SDK's worker and client, already connected to the sidecar."""

    def start(self, kind: str, input: Any, instance_id: str) -> None: ...

    def wait_for_start(self, instance_id: str, timeout: float) -> str: ...

    def wait_for_completion(self, instance_id: str, timeout: float) -> Outcome: ...

    def raise_event(self, instance_id: str, name: str, data: Any) -> None: ...

    def terminate(self, instance_id: str) -> None: ...

    def purge(self, instance_id: str) -> None: ...

    def extra_metrics(self) -> dict[str, Any]: ...

    def stop(self) -> None: ...


class Run:
    """The state of one workload run: its adapter, ids, deadline and metrics."""

    def __init__(self, adapter: SdkAdapter, run_id: str, deadline: float, sidecar_pid: int) -> None:
        self.adapter = adapter
        self.run_id = run_id
        self.deadline = deadline
        self.sidecar_pid = sidecar_pid
        self.instance_ids: list[str] = []
        self.metrics: dict[str, Any] = {}
        # Seconds spent sleeping on purpose (idle settle), subtracted from the wall time.
        self.excluded_seconds = 0.0

    def new_id(self, kind: str, index: int) -> str:
        instance_id = f"{self.run_id}-{kind}-{index}"
        self.instance_ids.append(instance_id)
        return instance_id

    def remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise BudgetExceededError()
        return left

    def wait(self, instance_id: str) -> Outcome:
        try:
            return self.adapter.wait_for_completion(instance_id, self.remaining())
        except TimeoutError:
            raise BudgetExceededError() from None


def _check(failures: list[str], instance_id: str, outcome: Outcome, expected: Any) -> None:
    if outcome.status != "COMPLETED":
        failures.append(f"{instance_id}: status {outcome.status}, expected COMPLETED (output {outcome.output!r})")
    elif outcome.output != expected:
        failures.append(f"{instance_id}: output {outcome.output!r}, expected {expected!r}")


def _raise_failures(failures: list[str], total: int) -> None:
    if failures:
        shown = "\n  ".join(failures[:MAX_REPORTED_FAILURES])
        raise CheckFailedError(f"{len(failures)} of {total} instances are wrong:\n  {shown}")


def _wait_and_check(run: Run, expected: dict[str, Any]) -> dict[str, Outcome]:
    failures: list[str] = []
    outcomes: dict[str, Outcome] = {}
    for instance_id, value in expected.items():
        outcome = run.wait(instance_id)
        outcomes[instance_id] = outcome
        _check(failures, instance_id, outcome, value)
    _raise_failures(failures, len(expected))
    return outcomes


def run_chain(run: Run, params: dict[str, Any]) -> None:
    """Start `instances` orchestrations at once; each calls `steps` activities in a row."""
    steps = params["steps"]
    expected = {}
    for index in range(params["instances"]):
        instance_id = run.new_id(CHAIN, index)
        run.adapter.start(CHAIN, [index, steps], instance_id)
        expected[instance_id] = index + steps
    _wait_and_check(run, expected)


def run_fan_out(run: Run, params: dict[str, Any]) -> None:
    """Run one orchestration that schedules `count` activities at once and sums their results."""
    count = params["count"]
    instance_id = run.new_id(FAN_OUT, 0)
    run.adapter.start(FAN_OUT, count, instance_id)
    _wait_and_check(run, {instance_id: sum(i * i for i in range(count))})


def run_sequential(run: Run, params: dict[str, Any]) -> None:
    """Run one orchestration that calls `steps` activities one after another."""
    steps = params["steps"]
    instance_id = run.new_id(SEQUENTIAL, 0)
    run.adapter.start(SEQUENTIAL, steps, instance_id)
    _wait_and_check(run, {instance_id: steps})


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def run_timers(run: Run, params: dict[str, Any]) -> None:
    """Start `instances` orchestrations that each wait on a 1 s timer.

    Each returns its timer's due time. The overhead of an instance is its
    completion time as the sidecar reports it (`completed_at` where the SDK
    exposes it, else the last-updated time) minus that due time.
    """
    expected: dict[str, Any] = {}
    for index in range(params["instances"]):
        instance_id = run.new_id(TIMER, index)
        run.adapter.start(TIMER, index, instance_id)
        expected[instance_id] = None
    overheads_ms = []
    failures: list[str] = []
    for instance_id in expected:
        outcome = run.wait(instance_id)
        if outcome.status != "COMPLETED" or not isinstance(outcome.output, str) or outcome.completed_at is None:
            failures.append(
                f"{instance_id}: status {outcome.status}, output {outcome.output!r}, "
                f"completed at {outcome.completed_at}; expected COMPLETED with a due time"
            )
            continue
        due = _as_utc(datetime.fromisoformat(outcome.output))
        overheads_ms.append((_as_utc(outcome.completed_at) - due).total_seconds() * 1000)
    _raise_failures(failures, len(expected))
    early = [value for value in overheads_ms if value < -50]
    if early:
        raise CheckFailedError(f"{len(early)} timers completed before their due time, by up to {-min(early):.0f} ms")
    run.metrics["timer_overhead_ms_median"] = statistics.median(overheads_ms)
    run.metrics["timer_overhead_ms_max"] = max(overheads_ms)


def run_events(run: Run, params: dict[str, Any]) -> None:
    """Start `instances` orchestrations, raising each one's event right after its start."""
    expected = {}
    for index in range(params["instances"]):
        instance_id = run.new_id(EVENT, index)
        run.adapter.start(EVENT, index, instance_id)
        run.adapter.raise_event(instance_id, EVENT_NAME, index)
        expected[instance_id] = index
    _wait_and_check(run, expected)


def run_idle(run: Run, params: dict[str, Any]) -> None:
    """Start `instances` orchestrations that wait for an event, read memory, then finish them."""
    run.metrics["worker_rss_before_bytes"] = resident_bytes(os.getpid())
    run.metrics["sidecar_rss_before_bytes"] = resident_bytes(run.sidecar_pid)
    expected = {}
    for index in range(params["instances"]):
        instance_id = run.new_id(EVENT, index)
        run.adapter.start(EVENT, index, instance_id)
        expected[instance_id] = index
    for instance_id in expected:
        status = run.adapter.wait_for_start(instance_id, run.remaining())
        if status != "RUNNING":
            raise CheckFailedError(f"{instance_id}: status {status} while idle, expected RUNNING")

    time.sleep(IDLE_SETTLE_SECONDS)
    run.excluded_seconds += IDLE_SETTLE_SECONDS
    run.metrics["worker_rss_idle_bytes"] = resident_bytes(os.getpid())
    run.metrics["sidecar_rss_idle_bytes"] = resident_bytes(run.sidecar_pid)

    for instance_id, index in expected.items():
        run.adapter.raise_event(instance_id, EVENT_NAME, index)
    _wait_and_check(run, expected)


WORKLOADS: dict[str, Callable[[Run, dict[str, Any]], None]] = {
    "chain": run_chain,
    "fan_out": run_fan_out,
    "sequential": run_sequential,
    "timers": run_timers,
    "events": run_events,
    "idle": run_idle,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run one benchmark workload and print RESULT {json}.")
    parser.add_argument("--address", required=True, help="sidecar address, 127.0.0.1:PORT")
    parser.add_argument("--sidecar-pid", type=int, required=True, help="process id of the sidecar, for CPU and memory")
    parser.add_argument("--workload", required=True, choices=sorted(WORKLOADS))
    parser.add_argument("--params", required=True, help="workload parameters as a JSON object")
    parser.add_argument("--run-id", required=True, help="prefix of every instance id of this run")
    parser.add_argument("--budget", type=float, required=True, help="seconds the workload may take")
    args = parser.parse_args(argv)
    if args.address.rsplit(":", 1)[0] not in ("127.0.0.1", "localhost"):
        parser.error(f"--address must be on 127.0.0.1, got {args.address!r}")
    return args


def _emit(result: dict[str, Any]) -> None:
    print("RESULT " + json.dumps(result, sort_keys=True), flush=True)


def _stop_quietly(adapter: SdkAdapter, timeout: float = 15.0) -> None:
    """Stop the adapter's worker, giving up after `timeout` seconds."""
    stopper = threading.Thread(target=adapter.stop, daemon=True)
    stopper.start()
    stopper.join(timeout)


def main(connect: Callable[[str], SdkAdapter], argv: list[str] | None = None) -> None:
    """Connect with `connect(address)`, run the workload, print the result and exit.

    Exit status 0 with `"finished": true` or `false` (budget exceeded), or 1 when a
    check failed. The process ends with os._exit so that a worker thread that
    does not stop cannot keep it alive.
    """
    args = parse_args(argv)
    params = json.loads(args.params)
    adapter = connect(args.address)
    run = Run(adapter, args.run_id, time.monotonic() + args.budget, args.sidecar_pid)
    result: dict[str, Any] = {"workload": args.workload, "params": params}
    status = 0

    cpu_before = own_cpu_seconds()
    sidecar_cpu_before = process_cpu_seconds(args.sidecar_pid)
    wall_before = time.perf_counter()
    try:
        WORKLOADS[args.workload](run, params)
        result["finished"] = True
    except BudgetExceededError:
        result["finished"] = False
    except CheckFailedError as error:
        result["finished"] = True
        result["check_failed"] = str(error)
        status = 1
    wall = time.perf_counter() - wall_before - run.excluded_seconds
    cpu = own_cpu_seconds() - cpu_before
    sidecar_cpu_after = process_cpu_seconds(args.sidecar_pid)

    result["wall_s"] = wall
    result["cpu_s"] = cpu
    if sidecar_cpu_before is not None and sidecar_cpu_after is not None:
        result["sidecar_cpu_s"] = sidecar_cpu_after - sidecar_cpu_before
    result["metrics"] = {**run.metrics, **adapter.extra_metrics()}

    # Clean up outside the measured window so that later runs on the same
    # sidecar start from a small store.
    for instance_id in run.instance_ids:
        try:
            if result["finished"]:
                adapter.purge(instance_id)
            else:
                # The harness restarts the sidecar after an unfinished run, so
                # terminating is enough to stop the work it would still offer.
                adapter.terminate(instance_id)
        except Exception as error:  # noqa: BLE001 - cleanup is best effort and reported
            result.setdefault("cleanup_errors", []).append(f"{instance_id}: {error}")
            if len(result["cleanup_errors"]) >= MAX_REPORTED_FAILURES:
                break
    _emit(result)
    _stop_quietly(adapter)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
