"""Orchestration code that mypy --strict must reject; each marked line names the expected error."""

from __future__ import annotations

import durable


@durable.activity
def double(ctx: durable.ActivityContext, value: int) -> int:
    return value * 2


@durable.activity
async def greet(ctx: durable.ActivityContext, name: str) -> str:
    return name


class Child(durable.Orchestration[int, str]):
    async def run(self, value: int) -> str:
        return str(value)


class Flow(durable.Orchestration[int, int]):
    @durable.step(start=True)
    async def begin(self, value: int) -> durable.Goto:
        await self.call_activity(double, "seven")  # E: Cannot infer value of type parameter "AIn" of "call_activity"
        text: str = await self.call_activity(double, 1)  # E: incompatible type "Activity[int, int]"; expected "Activity[int, str]"
        await self.call_sub_orchestration(Child, "seven")  # E: Cannot infer value of type parameter "AIn" of "call_sub_orchestration"
        number, name = await durable.when_all(self.call_activity(double, 1), self.call_activity(greet, "a"))
        wrong: str = number  # E: Incompatible types in assignment (expression has type "int", variable has type "str")
        return self.goto(self.finish, "ten")  # E: Argument 1 to "goto" of "Orchestration" has incompatible type

    @durable.step
    async def finish(self, value: int) -> int:
        return value
