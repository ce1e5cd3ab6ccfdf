"""Run the side-by-side benchmark: durable's worker and client against the official SDK's.

For each workload and each sidecar (ours on a fresh SQLite file, and the
official in-memory one), the harness starts the sidecar. It then runs the
durable driver (durable's interpreter) and the official driver (the peer
interpreter) in turn against it for several rounds, alternating which goes
first. Each driver is a fresh process that times its own workload and checks
every result. Medians and spreads go to a Markdown report and raw runs to JSON.

Usage: ``python -m bench [--quick] [--rounds N] [--only NAME ...] [--sidecar ours|official]``
from the repository root, with durable's virtual environment.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench import report
from bench.workloads import ALL_WORKLOADS, GROUPS, WORKLOADS, Workload

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
sys.path.insert(0, str(REPO_ROOT))

from tests.peer import launch  # noqa: E402 - needs the repository root on sys.path

DEFAULT_ROUNDS = 5
QUICK_ROUNDS = 2
SIDECARS = ("ours", "official")
SDKS = ("durable", "official")
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
# The official in-memory backend fails an orchestration whose history passes
# 10,000 events by default; a 10,000-activity fan-out writes about 20,000.
OFFICIAL_MAX_HISTORY_EVENTS = 100_000
# Extra seconds a driver gets past its workload budget to connect, clean up and exit.
DRIVER_GRACE_SECONDS = 60.0


@dataclass
class RunningSidecar:
    kind: str
    process: launch.ChildProcess
    address: str
    directory: str | None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    names = sorted([*ALL_WORKLOADS, *GROUPS])
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark durable's worker and client against the official durabletask SDK on the same sidecars.",
    )
    parser.add_argument("--rounds", type=int, default=None,
                        help=f"rounds per workload (default {DEFAULT_ROUNDS}, or {QUICK_ROUNDS} with --quick); "
                             "workloads with their own smaller round count keep it")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes and few rounds, for a smoke run of a few minutes")
    parser.add_argument("--only", action="append", choices=names, metavar="WORKLOAD",
                        help=f"run only this workload or group (repeatable): {', '.join(names)}")
    parser.add_argument("--sidecar", choices=SIDECARS, action="append",
                        help="run only on this sidecar (repeatable; default both)")
    parser.add_argument("--sdk", choices=SDKS, action="append",
                        help="run only this SDK (repeatable; default both)")
    parser.add_argument("--markdown", type=Path, default=None,
                        help="Markdown report to write (default BENCHMARKS.md for a full run; "
                             "a filtered or --quick run prints it to stdout unless this is given)")
    parser.add_argument("--json", type=Path, default=None,
                        help="raw results file (default bench/results.json for a full run, "
                             "bench/results-partial.json otherwise)")
    parser.add_argument("--note", action="append", default=[],
                        help="a line to add under the machine description (repeatable)")
    args = parser.parse_args(argv)
    if args.rounds is not None and args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")
    return args


def selected_workloads(only: list[str] | None) -> list[Workload]:
    if not only:
        return [*WORKLOADS, *[ALL_WORKLOADS[name] for name in GROUPS["scaling"]]]
    names: list[str] = []
    for name in only:
        for member in GROUPS.get(name, [name]):
            if member not in names:
                names.append(member)
    return [ALL_WORKLOADS[name] for name in names]


def start_sidecar(kind: str) -> RunningSidecar:
    """Start a fresh sidecar on 127.0.0.1: ours on a new SQLite file, or the official in-memory one."""
    if kind == "ours":
        directory = tempfile.mkdtemp(prefix="durable-bench-")
        process, address = launch.start_durable_sidecar_process(
            Path(directory) / "bench.db",
            extra_args=["--log-level", "WARNING", "--max-message-size", str(MAX_MESSAGE_BYTES)],
        )
        return RunningSidecar(kind, process, address, directory)
    process, address = launch.start_official_sidecar(
        max_message_bytes=MAX_MESSAGE_BYTES, max_history_size=OFFICIAL_MAX_HISTORY_EVENTS
    )
    return RunningSidecar(kind, process, address, None)


def stop_sidecar(sidecar: RunningSidecar) -> None:
    launch.stop(sidecar.process)
    if sidecar.directory is not None:
        for name in os.listdir(sidecar.directory):
            os.remove(Path(sidecar.directory) / name)
        os.rmdir(sidecar.directory)


def run_driver(sdk: str, workload: Workload, params: dict[str, Any], sidecar: RunningSidecar,
               run_id: str) -> dict[str, Any]:
    """Run one driver process and return its result, or a record of how it failed."""
    if sdk == "durable":
        command = [sys.executable, str(BENCH_DIR / "durable_driver.py")]
    else:
        command = [launch.peer_python(), str(BENCH_DIR / "official_driver.py")]
    command += [
        "--address", sidecar.address,
        "--sidecar-pid", str(sidecar.process.pid),
        "--workload", workload.scenario,
        "--params", json.dumps(params),
        "--run-id", run_id,
        "--budget", str(workload.budget_s),
    ]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    try:
        completed = subprocess.run(
            command, cwd=str(REPO_ROOT), env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=workload.budget_s + DRIVER_GRACE_SECONDS,
        )
    except subprocess.TimeoutExpired:
        return {"finished": False, "error": f"driver killed after {workload.budget_s + DRIVER_GRACE_SECONDS:g} s"}

    lines = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
    if not lines:
        return {
            "finished": False,
            "error": f"driver exited with status {completed.returncode} and no result",
            "stderr_tail": completed.stderr[-3000:],
        }
    result: dict[str, Any] = json.loads(lines[-1][len("RESULT "):])
    if completed.returncode != 0 and "check_failed" not in result:
        result["error"] = f"driver exited with status {completed.returncode}"
        result["stderr_tail"] = completed.stderr[-3000:]
    return result


def describe_run(result: dict[str, Any]) -> str:
    if "check_failed" in result:
        return "CHECK FAILED: " + str(result["check_failed"]).splitlines()[0]
    if "error" in result:
        return "ERROR: " + str(result["error"])
    if not result.get("finished"):
        return f"did not finish in {result.get('budget_s', 0):g} s"
    text = f"wall {result['wall_s']:.2f} s, cpu {result['cpu_s']:.2f} s"
    if "sidecar_cpu_s" in result:
        text += f", sidecar cpu {result['sidecar_cpu_s']:.2f} s"
    return text


def machine_description() -> dict[str, Any]:
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    peer_version = subprocess.run(
        [launch.peer_python(), "-c", "import importlib.metadata as m; print(m.version('durabletask'))"],
        capture_output=True, text=True, check=False,
    ).stdout.strip()
    revision = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "describe", "--always", "--dirty"],
        capture_output=True, text=True, check=False,
    ).stdout.strip()
    return {
        "revision": revision or "unknown",
        "cores": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "durabletask_version": peer_version,
        "load_average_at_start": list(os.getloadavg()),
    }


def run_benchmark(args: argparse.Namespace) -> tuple[list[dict[str, Any]], bool]:
    """Run every selected workload; return the run records and whether all checks passed."""
    workloads = selected_workloads(args.only)
    sidecars = args.sidecar or list(SIDECARS)
    sdks = args.sdk or list(SDKS)
    runs: list[dict[str, Any]] = []
    all_passed = True

    rounds = args.rounds or (QUICK_ROUNDS if args.quick else DEFAULT_ROUNDS)
    total = rounds * len(sdks) * len(sidecars) * len(workloads)
    done = 0

    for workload in workloads:
        params = workload.quick_params if args.quick else workload.params
        for sidecar_kind in sidecars:
            sidecar = start_sidecar(sidecar_kind)
            gave_up: set[str] = set()
            try:
                for round_index in range(rounds):
                    order = sdks if round_index % 2 == 0 else list(reversed(sdks))
                    for sdk in order:
                        done += 1
                        if sdk in gave_up:
                            continue
                        run_id = f"{workload.name}-{sdk}-{round_index}"
                        started = time.monotonic()
                        result = run_driver(sdk, workload, params, sidecar, run_id)
                        result.update(workload=workload.name, sidecar=sidecar_kind, sdk=sdk,
                                      round=round_index, budget_s=workload.budget_s,
                                      process_seconds=time.monotonic() - started)
                        runs.append(result)
                        print(f"[{done}/{total}] {workload.name} on {sidecar_kind} sidecar, {sdk} "
                              f"round {round_index + 1}/{rounds}: {describe_run(result)}",
                              file=sys.stderr, flush=True)
                        if "check_failed" in result or "error" in result:
                            all_passed = False
                            for line in (result.get("check_failed") or result.get("stderr_tail") or "").splitlines():
                                print(f"    {line}", file=sys.stderr)
                        if not result.get("finished") or "error" in result:
                            # Leftover work would be offered to the next run, so
                            # start over on a fresh sidecar and stop retrying this SDK.
                            gave_up.add(sdk)
                            stop_sidecar(sidecar)
                            sidecar = start_sidecar(sidecar_kind)
            finally:
                stop_sidecar(sidecar)
    return runs, all_passed


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    full_run = not (args.quick or args.only or args.sidecar or args.sdk)
    command = "python -m bench" + ("" if argv is None and len(sys.argv) <= 1 else
                                   " " + shlex.join(argv if argv is not None else sys.argv[1:]))
    started_at = datetime.now(timezone.utc)
    machine = machine_description()

    runs, all_passed = run_benchmark(args)

    document = {
        "command": command,
        "date": started_at.isoformat(timespec="seconds"),
        "duration_s": (datetime.now(timezone.utc) - started_at).total_seconds(),
        "machine": machine,
        "notes": args.note,
        "quick": args.quick,
        "workloads": {name: {"title": workload.title, "params": workload.quick_params if args.quick else workload.params,
                             "budget_s": workload.budget_s}
                      for name, workload in ALL_WORKLOADS.items()},
        "runs": runs,
    }
    json_path = args.json or (BENCH_DIR / ("results.json" if full_run else "results-partial.json"))
    json_path.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n", encoding="utf-8")

    markdown = report.render(document)
    markdown_path = args.markdown or (REPO_ROOT / "BENCHMARKS.md" if full_run else None)
    if markdown_path is None:
        print(markdown)
    else:
        report.write_generated_section(markdown_path, markdown)
    print(f"raw results: {json_path}" + (f"; report: {markdown_path}" if markdown_path else ""), file=sys.stderr)

    if not all_passed:
        print("benchmark FAILED: some runs had wrong results or errors (see above)", file=sys.stderr)
        return 1
    return 0
