"""Client code that mypy --strict must reject; each marked line names the expected error."""

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


def use(client: durable.Client) -> None:
    client.start(Review, 42)  # E: Cannot infer value of type parameter "In" of "start" of "Client"
    handle = client.start(Review, "design.md")
    wrong: str = handle.result()  # E: Incompatible types in assignment (expression has type "Approval", variable has type "str")
    handle.raise_event(Review.approval, "yes")  # E: Cannot infer value of type parameter "T" of "raise_event" of "OrchestrationHandle"
