"""The asyncio client end to end: the same surface as the synchronous client."""

from __future__ import annotations

import asyncio
import uuid

import pytest

import durable
from durable.errors import OrchestrationFailedError

from .conftest import SidecarUnderTest, WorkerFactory


@durable.activity
async def add_async(ctx: durable.ActivityContext, pair: list[int]) -> int:
    await asyncio.sleep(0)
    return pair[0] + pair[1]


class AioSum(durable.Orchestration[list[int], int]):
    async def run(self, values: list[int]) -> int:
        total = 0
        for value in values:
            total = await self.call_activity(add_async, [total, value])
        return total


class AioGate(durable.Orchestration[str, str]):
    opened: durable.Event[str] = durable.Event("opened")

    async def run(self, name: str) -> str:
        return f"{name} by {await self.opened.wait()}"


class AioFails(durable.Orchestration[int, int]):
    async def run(self, value: int) -> int:
        raise RuntimeError(f"failing with {value}")


class AioSteps(durable.Orchestration[int, int]):
    @durable.step(start=True)
    async def begin(self, value: int) -> durable.Goto:
        return self.goto(self.hold, value + 1)

    @durable.step
    async def hold(self, value: int) -> int:
        await self.wait_for_event("release", None)
        return value


@pytest.fixture
def worker(make_worker: WorkerFactory) -> durable.Worker:
    return make_worker(orchestrations=[AioSum, AioGate, AioFails, AioSteps], activities=[add_async])


def test_async_client_surface(worker: durable.Worker, sidecar: SidecarUnderTest) -> None:
    async def scenario() -> None:
        async with durable.AsyncClient(sidecar.address) as client:
            handle = await client.start(AioSum, [1, 2, 3, 4])
            assert await handle.result(timeout=30) == 10

            prefix = f"aio-{uuid.uuid4().hex[:10]}"
            gate = await client.start(AioGate, "door", instance_id=f"{prefix}-gate")
            await gate.wait_for_start(timeout=15)
            await gate.raise_event(AioGate.opened, "alice")
            assert await gate.result(timeout=30) == "door by alice"

            state = await client.get_state(gate.instance_id)
            assert state is not None
            assert state.status is durable.OrchestrationStatus.COMPLETED
            assert state.output == "door by alice"
            assert await client.get_state(f"{prefix}-missing") is None

            failing = await client.start(AioFails, 3, instance_id=f"{prefix}-fails")
            with pytest.raises(OrchestrationFailedError) as raised:
                await failing.result(timeout=30)
            assert raised.value.details is not None
            assert raised.value.details.message == "failing with 3"

            found = [s.instance_id async for s in client.query(instance_id_prefix=prefix, page_size=1)]
            assert sorted(found) == [f"{prefix}-fails", f"{prefix}-gate"]

            with pytest.raises(durable.InstanceNotFoundError):
                await client.suspend(f"{prefix}-missing")
            with pytest.raises(durable.InstanceNotFoundError):
                await client.terminate(f"{prefix}-missing")

            assert await client.purge(gate.instance_id) == 1
            assert await client.get_state(gate.instance_id) is None

    asyncio.run(scenario())


def test_async_client_control_and_steps(worker: durable.Worker, sidecar: SidecarUnderTest) -> None:
    async def scenario() -> None:
        async with durable.AsyncClient(sidecar.address) as client:
            handle = await client.start(AioSteps, 1)
            await handle.wait_for_start(timeout=15)
            step = None
            for _ in range(200):
                state = await handle.state()
                step = state.current_step if state is not None else None
                if step == "hold":
                    break
                await asyncio.sleep(0.05)
            assert step == "hold"

            await handle.suspend("pause")
            for _ in range(200):
                state = await handle.state()
                if state is not None and state.status is durable.OrchestrationStatus.SUSPENDED:
                    break
                await asyncio.sleep(0.05)
            assert state is not None and state.status is durable.OrchestrationStatus.SUSPENDED
            await handle.resume("go on")
            await handle.raise_event("release")
            assert await handle.result(timeout=30) == 2

            waiting = await client.start(AioGate, "never")
            with pytest.raises(TimeoutError) as raised:
                await waiting.result(timeout=0.3)
            assert waiting.instance_id in str(raised.value)
            await waiting.terminate("done")
            final = await waiting.wait(timeout=15)
            assert final.status is durable.OrchestrationStatus.TERMINATED

    asyncio.run(scenario())
