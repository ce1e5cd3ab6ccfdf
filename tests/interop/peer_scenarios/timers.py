"""Timers: sequential timers, parallel timers, and a timer that wins a when_any."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from durabletask import task

from _common import emit, parse_args, running_worker, wait_for_completion


def sleepy(ctx: Any, _: Any) -> Any:
    started = ctx.current_utc_datetime

    # Two timers in a row: 1 s, then 0.5 s.
    yield ctx.create_timer(timedelta(seconds=1))
    after_first = ctx.current_utc_datetime
    yield ctx.create_timer(timedelta(seconds=0.5))
    after_second = ctx.current_utc_datetime

    # Three timers at once; when_all finishes with the longest (1 s).
    yield task.when_all([ctx.create_timer(timedelta(seconds=s)) for s in (0.3, 1.0, 0.6)])
    after_parallel = ctx.current_utc_datetime

    # A 0.5 s timer races an event that the client never raises.
    timeout = ctx.create_timer(timedelta(seconds=0.5))
    never = ctx.wait_for_external_event("never-raised")
    winner = yield task.when_any([timeout, never])
    after_race = ctx.current_utc_datetime

    return {
        "first_seconds": (after_first - started).total_seconds(),
        "second_seconds": (after_second - after_first).total_seconds(),
        "parallel_seconds": (after_parallel - after_second).total_seconds(),
        "race_seconds": (after_race - after_parallel).total_seconds(),
        "race_winner": "timer" if winner is timeout else "event",
    }


def main() -> None:
    args = parse_args(__doc__)
    with running_worker(args.address, [sleepy], []) as (_, client):
        started = time.monotonic()
        instance_id = client.schedule_new_orchestration(sleepy, instance_id="timers-1")
        state = wait_for_completion(client, instance_id)
        wall_seconds = time.monotonic() - started
    emit({"instance_id": instance_id, "state": state, "wall_seconds": wall_seconds})


if __name__ == "__main__":
    main()
