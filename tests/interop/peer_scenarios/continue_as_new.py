"""Continue-as-new: a counter that restarts itself ten times, an accumulator
that keeps the events raised while it restarts, and a child that restarts
itself before its parent gets its result."""

from __future__ import annotations

from typing import Any

from _common import emit, history_event_counts, parse_args, running_worker, wait_for_completion


def counter(ctx: Any, state: dict[str, Any]) -> Any:
    state = dict(state)
    state["generations"].append(ctx.current_utc_datetime.isoformat())
    if state["count"] < state["target"]:
        ctx.continue_as_new({**state, "count": state["count"] + 1})
        return None
    return {"count": state["count"], "generations": len(state["generations"])}


def accumulator(ctx: Any, state: dict[str, Any]) -> Any:
    value = yield ctx.wait_for_external_event("add")
    received = state["received"] + [value]
    if len(received) < state["expected"]:
        # save_events carries the events that arrived meanwhile into the next generation.
        ctx.continue_as_new({"received": received, "expected": state["expected"]}, save_events=True)
        return None
    return {"received": received, "total": sum(received)}


def counting_parent(ctx: Any, target: int) -> Any:
    # The parent hears only from the child's last execution.
    child_output = yield ctx.call_sub_orchestrator(
        counter, input={"count": 0, "target": target, "generations": []},
        instance_id=f"{ctx.instance_id}-child")
    return {"child": child_output}


def main() -> None:
    args = parse_args(__doc__)
    with running_worker(args.address, [counter, accumulator, counting_parent], []) as (_, client):
        counter_id = client.schedule_new_orchestration(
            counter, input={"count": 0, "target": 10, "generations": []}, instance_id="can-counter")
        counter_state = wait_for_completion(client, counter_id)
        counter_history = history_event_counts(client, counter_id)

        accumulator_id = client.schedule_new_orchestration(
            accumulator, input={"received": [], "expected": 5}, instance_id="can-accumulator")
        for value in (1, 2, 3, 4, 5):
            client.raise_orchestration_event(accumulator_id, "add", data=value)
        accumulator_state = wait_for_completion(client, accumulator_id)

        parent_id = client.schedule_new_orchestration(counting_parent, input=3, instance_id="can-parent")
        parent_state = wait_for_completion(client, parent_id)

    emit({
        "parent": parent_state,
        "counter": counter_state,
        "counter_history": counter_history,
        "accumulator": accumulator_state,
    })


if __name__ == "__main__":
    main()
