"""Crash safety: SIGKILL durable's sidecar while 50 orchestrations are in flight.

The sidecar runs as a child process on a database file. A worker process of
the official SDK runs 50 orchestrations: half wait on a timer, half on a slow
activity. Their durations are spread, so when the sidecar is killed some
orchestrations are done, some activities are running and some timers are not
due yet. The sidecar then starts again on the same file and port, and the
worker reconnects by itself. Every orchestration must complete exactly once
with the right output. Activities that were running may run again, because
delivery is at least once.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.peer import launch

pytestmark = pytest.mark.interop

SCENARIO_DIR = Path(__file__).resolve().parent / "peer_scenarios"
INSTANCE_COUNT = 50
# The kill comes once this many slow activities have ended (the 0.3 s and 0.9 s
# ones), plus a pause, while the 1.5 s to 2.7 s activities are still running.
ENDED_BEFORE_KILL = 10
PAUSE_BEFORE_KILL_SECONDS = 0.5
# Longer than the remaining activities and the 2.5 s timers, so those finish or
# come due while the sidecar is down.
DOWNTIME_SECONDS = 3.0
IN_FLIGHT_TIMEOUT_SECONDS = 30.0
# An activity that ended this long before the kill has reported its result,
# which takes milliseconds, so the result is stored and must not be recomputed.
COMMITTED_MARGIN_SECONDS = 1.0


def instance_id_of(value: int) -> str:
    return f"crash-{value:02d}"


def read_activity_log(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    # The last line may be half written while the worker runs.
    return [json.loads(line) for line in lines if line.endswith("}")]


def wait_for_ended_slow_activities(path: Path, minimum: int, timeout: float) -> None:
    """Wait until at least ``minimum`` slow activities (odd values) have ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entries = read_activity_log(path)
        ended = [e for e in entries if e["phase"] == "end" and e["value"] % 2 == 1]
        if len(ended) >= minimum:
            return
        time.sleep(0.05)
    raise AssertionError(f"fewer than {minimum} slow activities ended within {timeout:g} s")


class CrashRig:
    """The sidecar and worker processes of one crash test; stops whatever is still running."""

    def __init__(self, tmp_path: Path) -> None:
        self.db_path = tmp_path / "crash.db"
        self.activity_log = tmp_path / "activities.jsonl"
        self.port = launch.free_port()
        self.sidecar: launch.ChildProcess | None = None
        self.worker: launch.ChildProcess | None = None
        self.address = ""

    def start_sidecar(self) -> None:
        self.sidecar, self.address = launch.start_durable_sidecar_process(self.db_path, port=self.port)

    def kill_sidecar(self) -> int:
        assert self.sidecar is not None
        return launch.kill(self.sidecar)

    def start_worker(self) -> None:
        self.worker = launch.ChildProcess(
            [launch.peer_python(), str(SCENARIO_DIR / "crash_worker.py"),
             "--address", self.address, "--log", str(self.activity_log)],
            cwd=str(launch.REPO_ROOT),
        )
        if self.worker.wait_for_stdout(re.compile(r"^READY\b"), 30.0) is None:
            raise AssertionError(f"the crash worker did not start\n{self.worker.output_tail()}")

    def client(self, *args: str, timeout: float = 120.0) -> dict[str, Any]:
        return launch.run_peer_script(
            SCENARIO_DIR / "crash_client.py",
            [*args, "--address", self.address, "--count", str(INSTANCE_COUNT)],
            timeout=timeout,
        )

    def close(self) -> None:
        for process in (self.worker, self.sidecar):
            if process is not None:
                launch.stop(process)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[CrashRig]:
    crash_rig = CrashRig(tmp_path)
    try:
        yield crash_rig
    finally:
        crash_rig.close()


def test_sidecar_sigkill_loses_nothing(rig: CrashRig) -> None:
    rig.start_sidecar()
    rig.start_worker()
    started = rig.client("start")
    assert started["started"] == [instance_id_of(v) for v in range(INSTANCE_COUNT)]

    wait_for_ended_slow_activities(rig.activity_log, ENDED_BEFORE_KILL, IN_FLIGHT_TIMEOUT_SECONDS)
    time.sleep(PAUSE_BEFORE_KILL_SECONDS)
    killed_at = time.time()
    killed_status = rig.kill_sidecar()
    assert killed_status == -9, f"the sidecar exited with status {killed_status} before it was killed"
    before_crash = [e for e in read_activity_log(rig.activity_log) if e["time"] < killed_at]

    # The crash must hit work in flight, or the test proves nothing.
    started_before = {e["instance_id"] for e in before_crash if e["phase"] == "start"}
    ended_before = {e["instance_id"] for e in before_crash if e["phase"] == "end"}
    assert started_before - ended_before, "no activity was running when the sidecar was killed"
    assert len(ended_before) < INSTANCE_COUNT, "every activity had ended before the sidecar was killed"

    time.sleep(DOWNTIME_SECONDS)
    rig.start_sidecar()
    assert rig.worker is not None
    assert rig.worker.poll() is None, f"the worker exited while the sidecar was down\n{rig.worker.output_tail()}"

    outcome = rig.client("collect", "--timeout", "60", timeout=120.0)

    wrong = {}
    for value in range(INSTANCE_COUNT):
        state = outcome[instance_id_of(value)]["state"]
        expected_output = {"value": value, "square": value * value}
        if state is None or state.get("status") != "COMPLETED" or state.get("output") != expected_output:
            wrong[instance_id_of(value)] = state
    assert not wrong, f"{len(wrong)} instances did not complete with the right output: {wrong}"

    # Exactly one of each event in every history: nothing completed twice and
    # no activity result or timer was applied twice or lost.
    unexpected_histories = {}
    for value in range(INSTANCE_COUNT):
        history = outcome[instance_id_of(value)]["history"]
        expected = {
            "ExecutionStartedEvent": 1,
            "ExecutionCompletedEvent": 1,
            "TaskScheduledEvent": 1,
            "TaskCompletedEvent": 1,
            "TaskFailedEvent": 0,
            "TimerCreatedEvent": 1 if value % 2 == 0 else 0,
            "TimerFiredEvent": 1 if value % 2 == 0 else 0,
        }
        counts = {kind: history.get(kind, 0) for kind in expected}
        if counts != expected:
            unexpected_histories[instance_id_of(value)] = history
    assert not unexpected_histories, f"histories with missing or repeated events: {unexpected_histories}"

    entries = read_activity_log(rig.activity_log)
    runs = Counter(e["instance_id"] for e in entries if e["phase"] == "start")
    ended = Counter(e["instance_id"] for e in entries if e["phase"] == "end")
    never_ended = [instance_id_of(v) for v in range(INSTANCE_COUNT) if ended[instance_id_of(v)] == 0]
    assert not never_ended, f"completed without a finished activity run: {never_ended}"

    committed = {
        e["instance_id"] for e in before_crash
        if e["phase"] == "end" and e["time"] < killed_at - COMMITTED_MARGIN_SECONDS
    }
    assert committed, "no activity result was stored long enough before the kill to check"
    rerun = {instance_id: runs[instance_id] for instance_id in committed if runs[instance_id] != 1}
    assert not rerun, f"activities that ended before the crash ran again after it: {rerun}"
