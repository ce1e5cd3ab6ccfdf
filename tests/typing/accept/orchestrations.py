"""Orchestration code that mypy --strict must accept."""

from __future__ import annotations

from datetime import timedelta

import attrs

import durable


@attrs.frozen
class Claim:
    amount: int
    owner: str


@attrs.frozen
class Decision:
    approved: bool


@durable.activity
def double(ctx: durable.ActivityContext, value: int) -> int:
    return value * 2


@durable.activity
async def greet(ctx: durable.ActivityContext, name: str) -> str:
    return f"hello {name}"


@durable.activity
def today(ctx: durable.ActivityContext) -> str:
    return "Friday"


class Child(durable.Orchestration[int, str]):
    async def run(self, value: int) -> str:
        return str(value)


class Expense(durable.Orchestration[Claim, Decision]):
    decision: durable.Event[Decision] = durable.Event("decision")

    @durable.step(start=True)
    async def submit(self, claim: Claim) -> durable.Goto:
        doubled: int = await self.call_activity(double, claim.amount)
        hello: str = await self.call_activity(greet, claim.owner)
        day: str = await self.call_activity(today)
        child: str = await self.call_sub_orchestration(Child, doubled)
        number, text = await durable.when_all(self.call_activity(double, 1), self.call_activity(greet, hello))
        total: int = number + len(text) + len(day) + len(child)
        listed: list[int] = await durable.when_all([self.call_activity(double, i) for i in range(total)])
        by_name: float = await self.call_activity("charge", claim, result_type=float)
        self.set_custom_status({"listed": len(listed), "charged": by_name})
        return self.goto(self.wait_for_decision, claim)

    @durable.step
    async def wait_for_decision(self, claim: Claim) -> Decision | durable.Goto:
        answer = self.decision.wait()
        deadline = self.create_timer(timedelta(days=3))
        winner = await durable.when_any(answer, deadline)
        if winner is deadline:
            return self.goto(self.escalate, claim)
        return answer.result()

    @durable.step
    async def escalate(self, claim: Claim) -> Decision:
        policy = durable.RetryPolicy(first_interval=timedelta(seconds=5), max_attempts=3)
        approved: bool = await self.wait_for_event("manager", bool)
        await self.call_activity(double, claim.amount, retry=policy)
        return Decision(approved)


class Loop(durable.Orchestration[int, int]):
    async def run(self, count: int) -> int:
        if count < 10:
            self.continue_as_new(count + 1)
        return count
