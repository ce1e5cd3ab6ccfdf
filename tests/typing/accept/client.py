"""Client code that mypy --strict must accept."""

from __future__ import annotations

import attrs

import durable


@attrs.frozen
class Approval:
    approved: bool


class Review(durable.Orchestration[str, Approval]):
    approval: durable.Event[Approval] = durable.Event("approval")

    async def run(self, document: str) -> Approval:
        return await self.approval.wait()


def use(client: durable.Client) -> bool:
    handle: durable.OrchestrationHandle[Approval] = client.start(Review, "design.md")
    handle.raise_event(Review.approval, Approval(True))
    client.raise_event(handle.instance_id, Review.approval, Approval(False))
    result: Approval = handle.result(timeout=30)
    by_name = client.start("Review", "notes.md")
    return result.approved and by_name.instance_id != ""


async def use_async(client: durable.AsyncClient) -> bool:
    handle = await client.start(Review, "design.md")
    await handle.raise_event(Review.approval, Approval(True))
    result: Approval = await handle.result(timeout=30)
    return result.approved
