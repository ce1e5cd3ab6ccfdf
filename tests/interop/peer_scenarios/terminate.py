"""Terminate: recursive termination reaches a running child, non-recursive
termination leaves it running, and a suspended instance can be terminated."""

from __future__ import annotations

import time
from typing import Any

from _common import emit, parse_args, running_worker, summarize, wait_for_completion, wait_for_status


def idle_child(ctx: Any, _: Any) -> Any:
    value = yield ctx.wait_for_external_event("never-raised")
    return value


def waiting_parent(ctx: Any, _: Any) -> Any:
    value = yield ctx.call_sub_orchestrator(idle_child, instance_id=f"{ctx.instance_id}-child")
    return value


def main() -> None:
    args = parse_args(__doc__)
    result: dict[str, Any] = {}
    with running_worker(args.address, [waiting_parent, idle_child], []) as (_, client):
        # Recursive: the parent and its running child both end TERMINATED.
        parent_id = client.schedule_new_orchestration(waiting_parent, instance_id="term-recursive")
        child_id = f"{parent_id}-child"
        result["recursive_child_before"] = wait_for_status(client, child_id, {"RUNNING"})
        client.terminate_orchestration(parent_id, output="stopped by test", recursive=True)
        result["recursive_parent"] = wait_for_completion(client, parent_id, timeout=15)
        result["recursive_child"] = wait_for_completion(client, child_id, timeout=15)

        # Not recursive: the child keeps running until it is terminated itself.
        parent_id = client.schedule_new_orchestration(waiting_parent, instance_id="term-shallow")
        child_id = f"{parent_id}-child"
        wait_for_status(client, child_id, {"RUNNING"})
        client.terminate_orchestration(parent_id, output="parent only", recursive=False)
        result["shallow_parent"] = wait_for_completion(client, parent_id, timeout=15)
        time.sleep(1.0)
        result["shallow_child_after_1s"] = summarize(client.get_orchestration_state(child_id))
        client.terminate_orchestration(child_id, output="child now", recursive=False)
        result["shallow_child"] = wait_for_completion(client, child_id, timeout=15)

        # A suspended instance can be terminated.
        suspended_id = client.schedule_new_orchestration(idle_child, instance_id="term-suspended")
        wait_for_status(client, suspended_id, {"RUNNING"})
        client.suspend_orchestration(suspended_id)
        result["suspended_before"] = wait_for_status(client, suspended_id, {"SUSPENDED"})
        client.terminate_orchestration(suspended_id, output={"reason": "cleanup"})
        result["suspended_terminated"] = wait_for_completion(client, suspended_id, timeout=15)
    emit(result)


if __name__ == "__main__":
    main()
