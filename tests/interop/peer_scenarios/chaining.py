"""Chaining: three activities in sequence, each fed the previous result."""

from __future__ import annotations

from typing import Any

from _common import emit, history_event_counts, parse_args, running_worker, wait_for_completion


def add_one(ctx: Any, value: int) -> int:
    return value + 1


def times_ten(ctx: Any, value: int) -> int:
    return value * 10


def describe(ctx: Any, value: int) -> str:
    return f"result={value}"


def chain(ctx: Any, value: int) -> Any:
    steps = []
    value = yield ctx.call_activity(add_one, input=value)
    steps.append(value)
    value = yield ctx.call_activity(times_ten, input=value)
    steps.append(value)
    text = yield ctx.call_activity(describe, input=value)
    steps.append(text)
    return {"steps": steps, "instance_id": ctx.instance_id}


def main() -> None:
    args = parse_args(__doc__)
    with running_worker(args.address, [chain], [add_one, times_ten, describe]) as (_, client):
        instance_id = client.schedule_new_orchestration(chain, input=5, instance_id="chain-1")
        state = wait_for_completion(client, instance_id)
        history = history_event_counts(client, instance_id)
    emit({"instance_id": instance_id, "state": state, "history": history})


if __name__ == "__main__":
    main()
