"""Worker for the crash test: runs until SIGTERM and logs every activity execution.

Even inputs wait on a timer (0.5 s or 2.5 s) and then call a quick activity.
Odd inputs call a slow activity that lasts from 0.3 s to 2.7 s, so a crash
about a second in finds some work done, some running and some not due yet.
Each activity appends one JSON line when it starts and one when it ends to the
file given by ``--log``, so the test can count executions.
The line ``READY`` on stdout means that the worker has started.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from datetime import timedelta
from types import FrameType
from typing import Any

from _common import parse_args, running_worker


def timer_seconds(value: int) -> float:
    return 0.5 if value % 4 == 0 else 2.5


def slow_activity_seconds(value: int) -> float:
    # 0.3, 0.9, 1.5, 2.1 or 2.7 s, for odd values ending in 1, 3, 5, 7 or 9.
    return 0.3 + 0.6 * (value % 10 // 2)


_log_lock = threading.Lock()
_log_path = ""


def log_execution(ctx: Any, value: int, phase: str) -> None:
    line = json.dumps({
        "instance_id": ctx.orchestration_id,
        "task_id": ctx.task_id,
        "value": value,
        "phase": phase,
        "time": time.time(),
    })
    with _log_lock, open(_log_path, "a", encoding="utf-8") as log:
        log.write(line + "\n")


def quick_square(ctx: Any, value: int) -> int:
    log_execution(ctx, value, "start")
    log_execution(ctx, value, "end")
    return value * value


def slow_square(ctx: Any, value: int) -> int:
    log_execution(ctx, value, "start")
    time.sleep(slow_activity_seconds(value))
    log_execution(ctx, value, "end")
    return value * value


def crash_job(ctx: Any, value: int) -> Any:
    if value % 2 == 0:
        yield ctx.create_timer(timedelta(seconds=timer_seconds(value)))
        square = yield ctx.call_activity(quick_square, input=value)
    else:
        square = yield ctx.call_activity(slow_square, input=value)
    return {"value": value, "square": square}


def main() -> None:
    global _log_path
    args = parse_args(__doc__, lambda parser: parser.add_argument("--log", required=True))
    _log_path = args.log

    stop_requested = threading.Event()

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        stop_requested.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    # Enough threads for every slow activity of the test to run at once.
    with running_worker(args.address, [crash_job], [quick_square, slow_square], thread_pool_size=64):
        print(f"READY pid={os.getpid()}", flush=True)
        stop_requested.wait()


if __name__ == "__main__":
    main()
