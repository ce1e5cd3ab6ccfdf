"""Sub-orchestrations: three children in parallel, a nested grandchild, and a
failing child whose error reaches the parent."""

from __future__ import annotations

from typing import Any

from durabletask import task

from _common import emit, parse_args, running_worker, summarize, wait_for_completion


def shout(ctx: Any, text: str) -> str:
    return text.upper()


def grandchild(ctx: Any, text: str) -> Any:
    shouted = yield ctx.call_activity(shout, input=text)
    return f"{shouted}!"


def child(ctx: Any, text: str) -> Any:
    shouted = yield ctx.call_activity(shout, input=text)
    if text == "nested":
        deeper = yield ctx.call_sub_orchestrator(
            grandchild, input="deep", instance_id=f"{ctx.instance_id}-grandchild")
        return f"{shouted}/{deeper}"
    return shouted


def broken_child(ctx: Any, text: str) -> Any:
    raise ValueError(f"child cannot handle {text}")


def parent(ctx: Any, words: list[str]) -> Any:
    children = [
        ctx.call_sub_orchestrator(child, input=word, instance_id=f"{ctx.instance_id}-child-{i}")
        for i, word in enumerate(words)
    ]
    results = yield task.when_all(children)
    try:
        yield ctx.call_sub_orchestrator(broken_child, input="this", instance_id=f"{ctx.instance_id}-broken")
        failure = None
    except task.TaskFailedError as error:
        failure = {"message": error.details.message, "type": error.details.error_type}
    return {"results": results, "failure": failure}


def main() -> None:
    args = parse_args(__doc__)
    words = ["alpha", "nested", "omega"]
    with running_worker(args.address, [parent, child, grandchild, broken_child], [shout]) as (_, client):
        parent_id = client.schedule_new_orchestration(parent, input=words, instance_id="subs-parent")
        result = {"parent": wait_for_completion(client, parent_id), "children": {}}
        child_ids = [f"{parent_id}-child-{i}" for i in range(len(words))]
        for child_id in child_ids + [f"{parent_id}-child-1-grandchild", f"{parent_id}-broken"]:
            result["children"][child_id] = summarize(client.get_orchestration_state(child_id))
    emit(result)


if __name__ == "__main__":
    main()
