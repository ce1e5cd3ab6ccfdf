"""External events: raised right after start, three of one name in order, one
racing a timer, one raised before the orchestration waits for it, and one
raised to an unknown instance."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from durabletask import task

from _common import emit, parse_args, rpc_error_code, running_worker, wait_for_completion, wait_for_status


def approval(ctx: Any, _: Any) -> Any:
    decision = yield ctx.wait_for_external_event("approval")
    return {"decision": decision}


def collector(ctx: Any, count: int) -> Any:
    items = []
    for _ in range(count):
        item = yield ctx.wait_for_external_event("item")
        items.append(item)
    return items


def deadline(ctx: Any, _: Any) -> Any:
    event = ctx.wait_for_external_event("answer")
    timeout = ctx.create_timer(timedelta(seconds=30))
    winner = yield task.when_any([event, timeout])
    if winner is event:
        return {"winner": "event", "answer": event.get_result()}
    return {"winner": "timer"}


def late_waiter(ctx: Any, _: Any) -> Any:
    # The event arrives while the orchestration is still waiting on this timer.
    yield ctx.create_timer(timedelta(seconds=1))
    value = yield ctx.wait_for_external_event("early")
    return {"early": value}


def main() -> None:
    args = parse_args(__doc__)
    with running_worker(args.address, [approval, collector, deadline, late_waiter], []) as (_, client):
        # Raised immediately after StartInstance returns, before any worker has
        # run the orchestration.
        approval_id = client.schedule_new_orchestration(approval, instance_id="events-approval")
        client.raise_orchestration_event(approval_id, "approval", data={"approved": True, "by": "ops"})

        collector_id = client.schedule_new_orchestration(collector, input=3, instance_id="events-collector")
        for value in ("first", "second", "third"):
            client.raise_orchestration_event(collector_id, "item", data=value)

        deadline_id = client.schedule_new_orchestration(deadline, instance_id="events-deadline")
        wait_for_status(client, deadline_id, {"RUNNING"})
        client.raise_orchestration_event(deadline_id, "answer", data=42)

        late_id = client.schedule_new_orchestration(late_waiter, instance_id="events-late")
        wait_for_status(client, late_id, {"RUNNING"})
        client.raise_orchestration_event(late_id, "early", data="kept")

        unknown_code = rpc_error_code(
            lambda: client.raise_orchestration_event("events-no-such-instance", "approval", data=1))

        started = time.monotonic()
        result = {
            "approval": wait_for_completion(client, approval_id),
            "collector": wait_for_completion(client, collector_id),
            "deadline": wait_for_completion(client, deadline_id),
            "late": wait_for_completion(client, late_id),
            "unknown_instance_code": unknown_code,
        }
        result["wait_seconds"] = time.monotonic() - started
    emit(result)


if __name__ == "__main__":
    main()
