"""Client for the crash test: ``start`` schedules the instances, ``collect``
waits for each and reports its state and the kinds of events in its history."""

from __future__ import annotations

import argparse
import time
from typing import Any

from _common import emit, history_event_counts, new_client, parse_args, wait_for_completion

ORCHESTRATION_NAME = "crash_job"


def instance_id_of(value: int) -> str:
    return f"crash-{value:02d}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["start", "collect"])
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds that collect waits for all instances together")


def main() -> None:
    args = parse_args(__doc__, add_arguments)
    client = new_client(args.address)
    result: dict[str, Any] = {}
    try:
        if args.action == "start":
            result["started"] = [
                client.schedule_new_orchestration(ORCHESTRATION_NAME, input=value, instance_id=instance_id_of(value))
                for value in range(args.count)
            ]
        else:
            deadline = time.monotonic() + args.timeout
            for value in range(args.count):
                instance_id = instance_id_of(value)
                remaining = max(deadline - time.monotonic(), 0.5)
                result[instance_id] = {
                    "state": wait_for_completion(client, instance_id, timeout=remaining),
                    "history": history_event_counts(client, instance_id),
                }
    finally:
        client.close()
    emit(result)


if __name__ == "__main__":
    main()
