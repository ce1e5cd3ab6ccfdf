"""Fan-out/fan-in: run many activities in parallel and combine their results.

Run alone against a running sidecar (start one with `durable sidecar`):

    python -m examples.fan_out_fan_in --address 127.0.0.1:4001
"""

from __future__ import annotations

import durable
from examples._run import parse_address


@durable.activity
def list_work(ctx: durable.ActivityContext, count: int) -> list[str]:
    return [f"item-{i}" for i in range(count)]


@durable.activity
def process(ctx: durable.ActivityContext, item: str) -> int:
    return len(item)


class ProcessAll(durable.Orchestration[int, int]):
    """Lists the work, processes every item in parallel and sums the results."""

    async def run(self, count: int) -> int:
        items = await self.call_activity(list_work, count)
        sizes = await durable.when_all([self.call_activity(process, item) for item in items])
        return sum(sizes)


def main(address: str, count: int = 100) -> int:
    with durable.Worker(address, orchestrations=[ProcessAll], activities=[list_work, process]), durable.Client(
        address
    ) as client:
        return client.start(ProcessAll, count).result(timeout=120)


if __name__ == "__main__":
    print(main(parse_address(__doc__ or "")))
