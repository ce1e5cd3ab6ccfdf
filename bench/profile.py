"""Profile durable's worker and our sidecar on benchmark workloads with py-spy.

py-spy samples every Python thread of a process from outside, which catches
the gRPC handler threads of the sidecar and the worker's thread pools that
cProfile (main thread only) misses. Install it with ``pip install py-spy``
(it is not a project dependency) or pass ``--py-spy PATH``.

Usage: ``python -m bench.profile [--workload chain --workload fan_out_1k] [--top 15]``.
It prints, for each workload and process, the functions with the most samples
on CPU: "self" counts samples in the function itself, "total" counts samples
with the function anywhere on the stack.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from bench.run import BENCH_DIR, MAX_MESSAGE_BYTES, REPO_ROOT
from bench.workloads import ALL_WORKLOADS
from tests.peer import launch

SAMPLE_RATE = 250
DEFAULT_WORKLOADS = ("chain", "fan_out_1k", "fan_out_10k")
# A py-spy frame reads "function (path/to/file.py:line)".
_FRAME_PATTERN = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.splitlines()[0])
    parser.add_argument("--workload", action="append", choices=sorted(ALL_WORKLOADS),
                        help=f"workload to profile (repeatable; default {', '.join(DEFAULT_WORKLOADS)})")
    parser.add_argument("--py-spy", default=os.environ.get("PY_SPY") or shutil.which("py-spy"),
                        help="py-spy executable (default: $PY_SPY, then py-spy on PATH)")
    parser.add_argument("--top", type=int, default=15, help="functions to list per process (default 15)")
    parser.add_argument("--output", type=Path, default=None,
                        help="folder for the raw py-spy stacks (default: a new temporary folder)")
    args = parser.parse_args(argv)
    if not args.py_spy or not Path(args.py_spy).exists():
        parser.error("py-spy not found: install it with `pip install py-spy`, or pass --py-spy PATH")
    return args


def _short_path(path: str) -> str:
    for marker in ("site-packages/", "/lib/python3"):
        if marker in path:
            return path[path.index(marker) + len(marker):].lstrip("/")
    try:
        return str(Path(path).resolve().relative_to(REPO_ROOT))
    except ValueError:
        return path


def _frame_name(frame: str) -> str:
    match = _FRAME_PATTERN.match(frame)
    if match is None:
        return frame
    return f"{_short_path(match.group('file'))}:{match.group('function')}"


def summarize(raw_path: Path, top: int) -> list[str]:
    """Return Markdown lines listing the top functions of a py-spy raw (collapsed stacks) file."""
    self_samples: Counter[str] = Counter()
    total_samples: Counter[str] = Counter()
    samples = 0

    for line in raw_path.read_text(encoding="utf-8").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_name(frame) for frame in stack.split(";")]
        # The first frame is the thread name ("process 123:..." or "thread (0x...)").
        frames = [frame for frame in frames if not frame.startswith(("process ", "thread ("))]
        # Module imports run before the measured window (interpreter start-up).
        if not frames or any(frame.endswith(":<module>") or "importlib" in frame for frame in frames):
            continue
        samples += count
        self_samples[frames[-1]] += count
        for name in set(frames):
            total_samples[name] += count
    if samples == 0:
        return ["(no samples)"]

    lines = [f"{samples} samples at {SAMPLE_RATE} Hz holding the GIL, start-up imports left out.", "",
             "| function | self % | total % |", "| --- | --- | --- |"]
    for name, count in self_samples.most_common(top):
        lines.append(f"| `{name}` | {100 * count / samples:.1f} | {100 * total_samples[name] / samples:.1f} |")
    lines += ["", "durable's own functions by total time:", "",
              "| function | total % |", "| --- | --- |"]
    shown = 0
    for name, count in total_samples.most_common():
        if not name.startswith("durable/"):
            continue
        lines.append(f"| `{name}` | {100 * count / samples:.1f} |")
        shown += 1
        if shown == top:
            break
    return lines


def _child_pid(pid: int) -> int | None:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text(encoding="ascii").split()
    except OSError:
        return None
    return int(children[0]) if children else None


def profile_workload(name: str, py_spy: str, output: Path, top: int) -> list[str]:
    workload = ALL_WORKLOADS[name]
    # --gil keeps only samples of the thread holding the GIL, which is where
    # Python code spends CPU; threads blocked in waits are left out.
    record = [py_spy, "record", "--format", "raw", "--rate", str(SAMPLE_RATE), "--nonblocking", "--gil"]
    sidecar_raw = output / f"{name}-sidecar.txt"
    worker_raw = output / f"{name}-worker.txt"
    database = Path(tempfile.mkdtemp(prefix="durable-profile-")) / "profile.db"
    sidecar_command = [
        *record, "--output", str(sidecar_raw), "--",
        sys.executable, "-m", "durable.sidecar", "--db", str(database), "--host", "127.0.0.1", "--port", "0",
        "--log-level", "WARNING", "--max-message-size", str(MAX_MESSAGE_BYTES),
    ]
    spy_process, address = launch._start_server(sidecar_command, "durable sidecar under py-spy",
                                                 launch.START_TIMEOUT_SECONDS)
    sidecar_pid = _child_pid(spy_process.pid) or spy_process.pid
    try:
        driver = subprocess.run(
            [*record, "--output", str(worker_raw), "--",
             sys.executable, str(BENCH_DIR / "durable_driver.py"), "--address", address,
             "--sidecar-pid", str(sidecar_pid), "--workload", workload.scenario,
             "--params", json.dumps(workload.params), "--run-id", f"profile-{name}",
             "--budget", str(workload.budget_s)],
            cwd=str(REPO_ROOT), capture_output=True, text=True, timeout=workload.budget_s + 60,
        )
        result_lines = [line for line in driver.stdout.splitlines() if line.startswith("RESULT ")]
        if driver.returncode != 0 or not result_lines:
            raise RuntimeError(f"profiled driver for {name} failed with status {driver.returncode}:\n"
                               f"{driver.stdout[-2000:]}\n{driver.stderr[-3000:]}")
        result = json.loads(result_lines[-1][len("RESULT "):])
    finally:
        # Stop the sidecar itself: py-spy writes its file when the profiled process exits.
        if sidecar_pid != spy_process.pid and Path(f"/proc/{sidecar_pid}").exists():
            os.kill(sidecar_pid, signal.SIGTERM)
        try:
            spy_process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            launch.stop(spy_process)

    lines = [f"#### {name}: {workload.title}", "",
             f"Driver under py-spy: wall {result['wall_s']:.2f} s, worker CPU {result['cpu_s']:.2f} s, "
             f"sidecar CPU {result.get('sidecar_cpu_s', float('nan')):.2f} s.", ""]
    lines += ["Worker and client process:", "", *summarize(worker_raw, top), ""]
    lines += ["Sidecar process:", "", *summarize(sidecar_raw, top), ""]
    return lines


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    output = args.output or Path(tempfile.mkdtemp(prefix="durable-bench-profile-"))
    output.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []
    for name in args.workload or DEFAULT_WORKLOADS:
        print(f"profiling {name} ...", file=sys.stderr, flush=True)
        lines += profile_workload(name, args.py_spy, output, args.top)
    print("\n".join(lines))
    print(f"raw py-spy stacks: {output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
