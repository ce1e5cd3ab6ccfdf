"""Human interaction: wait for a typed approval event, raced against a durable timer.

If no approval arrives in time, the orchestration moves to an escalation step that
waits for a manager instead. Run alone against a running sidecar:

    python -m examples.human_interaction --address 127.0.0.1:4001
"""

from __future__ import annotations

from datetime import timedelta

import attrs

import durable
from examples._run import parse_address


@attrs.frozen
class Claim:
    owner: str
    amount: int
    # How long the owner's approver has; short in the example, days in real life.
    approval_seconds: float = 2.0


@attrs.frozen
class Approval:
    approved: bool
    by: str


@durable.activity
def notify(ctx: durable.ActivityContext, message: str) -> None:
    print(f"[notify] {message}")


class Expense(durable.Orchestration[Claim, Approval]):
    """Asks for approval; escalates to a manager when the deadline passes."""

    approval: durable.Event[Approval] = durable.Event("approval")
    manager_approval: durable.Event[Approval] = durable.Event("manager_approval")

    @durable.step(start=True)
    async def request_approval(self, claim: Claim) -> Approval | durable.Goto:
        await self.call_activity(notify, f"{claim.owner} asks for {claim.amount}")
        answer = self.approval.wait()
        deadline = self.create_timer(timedelta(seconds=claim.approval_seconds))
        if await durable.when_any(answer, deadline) is deadline:
            return self.goto(self.escalate, claim)
        return answer.result()

    @durable.step
    async def escalate(self, claim: Claim) -> Approval:
        await self.call_activity(notify, f"no answer for {claim.owner}; escalating to a manager")
        return await self.manager_approval.wait()


def main(address: str) -> tuple[Approval, Approval]:
    with durable.Worker(address, orchestrations=[Expense], activities=[notify]), durable.Client(address) as client:
        quick = client.start(Expense, Claim("ana", 120, approval_seconds=30))
        quick.raise_event(Expense.approval, Approval(True, "lead"))

        # The manager's approval arrives early: it waits in the instance's buffer
        # until the escalation step waits for it.
        slow = client.start(Expense, Claim("bo", 900, approval_seconds=1))
        slow.raise_event(Expense.manager_approval, Approval(False, "manager"))
        return quick.result(timeout=60), slow.result(timeout=60)


if __name__ == "__main__":
    print(main(parse_address(__doc__ or "")))
