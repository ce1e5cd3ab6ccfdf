"""Fan-out/fan-in: 200 activities scheduled at once, results gathered with when_all."""

from __future__ import annotations

from typing import Any

from durabletask import task

from _common import emit, history_event_counts, parse_args, running_worker, wait_for_completion


def square(ctx: Any, value: int) -> int:
    return value * value


def fan_out(ctx: Any, count: int) -> Any:
    tasks = [ctx.call_activity(square, input=i) for i in range(count)]
    squares = yield task.when_all(tasks)
    return {"squares": squares, "total": sum(squares)}


def main() -> None:
    args = parse_args(__doc__, lambda parser: parser.add_argument("--count", type=int, default=200))
    with running_worker(args.address, [fan_out], [square]) as (_, client):
        instance_id = client.schedule_new_orchestration(fan_out, input=args.count, instance_id="fan-out-1")
        state = wait_for_completion(client, instance_id, timeout=60)
        history = history_event_counts(client, instance_id)
    emit({"instance_id": instance_id, "state": state, "history": history})


if __name__ == "__main__":
    main()
