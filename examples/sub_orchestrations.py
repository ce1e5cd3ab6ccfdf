"""Sub-orchestrations with retries, and a failing child handled by its parent.

Run alone against a running sidecar:

    python -m examples.sub_orchestrations --address 127.0.0.1:4001
"""

from __future__ import annotations

from datetime import timedelta

import attrs

import durable
from examples._run import parse_address


@attrs.frozen
class Shipment:
    order: str
    address: str


@attrs.frozen
class Report:
    shipped: list[str]
    failed: dict[str, str]


# Calls per order, kept by the worker process, so the example can show a retry.
_calls: dict[str, int] = {}


@durable.activity
def book_courier(ctx: durable.ActivityContext, shipment: Shipment) -> str:
    if not shipment.address:
        raise ValueError(f"order {shipment.order} has no delivery address")
    _calls[shipment.order] = _calls.get(shipment.order, 0) + 1
    if shipment.order.endswith("-flaky") and _calls[shipment.order] == 1:
        raise ConnectionError(f"courier service busy for {shipment.order}")
    return f"{shipment.order} -> {shipment.address}"


RETRY = durable.RetryPolicy(first_interval=timedelta(milliseconds=200), max_attempts=3, retry_on=(ConnectionError,))


class ShipOne(durable.Orchestration[Shipment, str]):
    """Books a courier for one order, retrying busy signals."""

    async def run(self, shipment: Shipment) -> str:
        return await self.call_activity(book_courier, shipment, retry=RETRY)


class ShipAll(durable.Orchestration[list[Shipment], Report]):
    """Ships every order in a child orchestration and reports which ones failed."""

    async def run(self, shipments: list[Shipment]) -> Report:
        children = [self.call_sub_orchestration(ShipOne, s, instance_id=f"{self.instance_id}-{s.order}") for s in shipments]
        shipped: list[str] = []
        failed: dict[str, str] = {}
        for shipment, child in zip(shipments, children):
            try:
                shipped.append(await child)
            except durable.TaskFailedError as error:
                root = error.details.chain()[-1]
                failed[shipment.order] = f"{root.error_type}: {root.message}"
        return Report(shipped, failed)


def main(address: str) -> Report:
    orders = [Shipment("A1", "Oslo"), Shipment("B2-flaky", "Lima"), Shipment("C3", "")]
    with durable.Worker(address, orchestrations=[ShipAll, ShipOne], activities=[book_courier]), durable.Client(
        address
    ) as client:
        return client.start(ShipAll, orders).result(timeout=60)


if __name__ == "__main__":
    print(main(parse_address(__doc__ or "")))
