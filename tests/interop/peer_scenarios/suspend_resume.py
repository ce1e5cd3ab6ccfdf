"""Suspend and resume: an event raised while suspended is held until resume."""

from __future__ import annotations

import time
from typing import Any

from _common import emit, parse_args, running_worker, summarize, wait_for_completion, wait_for_status


def stamp(ctx: Any, text: str) -> str:
    return f"stamped:{text}"


def gated(ctx: Any, _: Any) -> Any:
    signal = yield ctx.wait_for_external_event("go")
    stamped = yield ctx.call_activity(stamp, input=signal)
    return {"signal": signal, "stamped": stamped}


def main() -> None:
    args = parse_args(__doc__)
    with running_worker(args.address, [gated], [stamp]) as (_, client):
        instance_id = client.schedule_new_orchestration(gated, instance_id="suspend-1")
        running = wait_for_status(client, instance_id, {"RUNNING"})

        client.suspend_orchestration(instance_id, reason="maintenance")
        suspended = wait_for_status(client, instance_id, {"SUSPENDED"})

        client.raise_orchestration_event(instance_id, "go", data="green")
        time.sleep(1.5)
        while_suspended = summarize(client.get_orchestration_state(instance_id))

        client.resume_orchestration(instance_id, reason="done")
        final = wait_for_completion(client, instance_id)

        # A resume of an instance that is not suspended is ignored.
        other_id = client.schedule_new_orchestration(gated, instance_id="suspend-2")
        wait_for_status(client, other_id, {"RUNNING"})
        client.resume_orchestration(other_id, reason="not suspended")
        client.raise_orchestration_event(other_id, "go", data="plain")
        other_final = wait_for_completion(client, other_id)

    emit({
        "running": running,
        "suspended": suspended,
        "while_suspended": while_suspended,
        "final": final,
        "stray_resume_final": other_final,
    })


if __name__ == "__main__":
    main()
