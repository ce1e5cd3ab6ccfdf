"""Purge: by id, of a running instance (rejected), recursively with a child,
and by filter over a creation-time range."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import grpc
from durabletask import client as dt_client

from _common import emit, parse_args, running_worker, summarize, wait_for_completion, wait_for_status


def echo(ctx: Any, value: Any) -> Any:
    return value
    yield  # a generator, like every orchestrator


def idle(ctx: Any, _: Any) -> Any:
    value = yield ctx.wait_for_external_event("never-raised")
    return value


def with_child(ctx: Any, value: Any) -> Any:
    child_output = yield ctx.call_sub_orchestrator(echo, input=value, instance_id=f"{ctx.instance_id}-child")
    return child_output


def purge_outcome(call: Any) -> dict[str, Any]:
    """Return the deleted count of a purge, or the gRPC error code it was rejected with."""
    try:
        purged = call()
    except grpc.RpcError as error:
        return {"deleted": None, "error": error.code().name}  # type: ignore[attr-defined]
    return {"deleted": purged.deleted_instance_count, "error": None}


def main() -> None:
    args = parse_args(__doc__)
    result: dict[str, Any] = {}
    with running_worker(args.address, [echo, idle, with_child], []) as (_, client):
        # By id, a completed instance.
        done_id = client.schedule_new_orchestration(echo, input="bye", instance_id="purge-done")
        result["done_before"] = wait_for_completion(client, done_id)
        result["done_purge"] = purge_outcome(lambda: client.purge_orchestration(done_id, recursive=False))
        result["done_after"] = summarize(client.get_orchestration_state(done_id))
        result["done_purge_again"] = purge_outcome(lambda: client.purge_orchestration(done_id, recursive=False))

        # A running instance is not purged.
        running_id = client.schedule_new_orchestration(idle, instance_id="purge-running")
        wait_for_status(client, running_id, {"RUNNING"})
        result["running_purge"] = purge_outcome(lambda: client.purge_orchestration(running_id, recursive=False))
        result["running_after"] = summarize(client.get_orchestration_state(running_id))

        # Recursive: the parent and its child go together.
        parent_id = client.schedule_new_orchestration(with_child, input=7, instance_id="purge-parent")
        result["parent_before"] = wait_for_completion(client, parent_id)
        result["child_before"] = summarize(client.get_orchestration_state(f"{parent_id}-child"))
        result["recursive_purge"] = purge_outcome(lambda: client.purge_orchestration(parent_id, recursive=True))
        result["parent_after"] = summarize(client.get_orchestration_state(parent_id))
        result["child_after"] = summarize(client.get_orchestration_state(f"{parent_id}-child"))

        # By filter: completed instances created from now on; the running one stays.
        batch_start = datetime.now(timezone.utc) - timedelta(milliseconds=1)
        batch_ids = [
            client.schedule_new_orchestration(echo, input=i, instance_id=f"purge-batch-{i}") for i in range(3)
        ]
        for instance_id in batch_ids:
            wait_for_completion(client, instance_id)
        result["filter_purge"] = purge_outcome(lambda: client.purge_orchestrations_by(
            created_time_from=batch_start,
            runtime_status=[dt_client.OrchestrationStatus.COMPLETED],
        ))
        result["batch_after"] = {i: summarize(client.get_orchestration_state(i)) for i in batch_ids}
        result["running_after_filter"] = summarize(client.get_orchestration_state(running_id))

        client.terminate_orchestration(running_id)
        result["running_terminated"] = wait_for_completion(client, running_id)
        result["terminated_purge"] = purge_outcome(lambda: client.purge_orchestration(running_id))
    emit(result)


if __name__ == "__main__":
    main()
