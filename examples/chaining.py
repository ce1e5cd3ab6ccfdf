"""Function chaining: call activities one after another, each with the previous result.

Run alone against a running sidecar (start one with `durable sidecar`):

    python -m examples.chaining --address 127.0.0.1:4001
"""

from __future__ import annotations

import durable
from examples._run import parse_address


@durable.activity
def hello(ctx: durable.ActivityContext, name: str) -> str:
    return f"Hello {name}!"


class Greetings(durable.Orchestration[list[str], list[str]]):
    """Greets each city in turn; the whole machine is the `run` method."""

    async def run(self, cities: list[str]) -> list[str]:
        return [await self.call_activity(hello, city) for city in cities]


def main(address: str) -> list[str]:
    with durable.Worker(address, orchestrations=[Greetings], activities=[hello]), durable.Client(address) as client:
        handle = client.start(Greetings, ["Tokyo", "Seattle", "London"])
        return handle.result(timeout=60)


if __name__ == "__main__":
    print(main(parse_address(__doc__ or "")))
