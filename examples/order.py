"""A multi-step order: reserve stock, charge the card, then ship, one step each.

Each step is a state of the machine and `goto` is the transition; `durable graph
examples.order:ProcessOrder` draws it. Run alone against a running sidecar:

    python -m examples.order --address 127.0.0.1:4001
"""

from __future__ import annotations

import time
from typing import Any

import attrs

import durable
from examples._run import parse_address


@attrs.frozen
class Order:
    id: str
    item: str
    quantity: int
    card: str


@attrs.frozen
class Receipt:
    order_id: str
    charged: float
    tracking: str


# The activities sleep a little so that a watcher can see each step go by.
STEP_SECONDS = 0.4


@durable.activity
def reserve(ctx: durable.ActivityContext, order: Order) -> float:
    time.sleep(STEP_SECONDS)
    return 9.5 * order.quantity


@durable.activity
def charge(ctx: durable.ActivityContext, amount: float) -> float:
    time.sleep(STEP_SECONDS)
    return round(amount * 1.2, 2)  # with tax


@durable.activity
def ship(ctx: durable.ActivityContext, order: Order) -> str:
    time.sleep(STEP_SECONDS)
    return f"TRACK-{order.id.upper()}"


@attrs.frozen
class Charged:
    order: Order
    amount: float


class ProcessOrder(durable.Orchestration[Order, Receipt]):
    """Reserve, charge and ship an order."""

    @durable.step(start=True)
    async def reserve_stock(self, order: Order) -> durable.Goto:
        price = await self.call_activity(reserve, order)
        return self.goto(self.charge_card, Charged(order, price))

    @durable.step
    async def charge_card(self, charged: Charged) -> durable.Goto:
        total = await self.call_activity(charge, charged.amount)
        return self.goto(self.ship_order, Charged(charged.order, total))

    @durable.step
    async def ship_order(self, charged: Charged) -> Receipt:
        tracking = await self.call_activity(ship, charged.order)
        return Receipt(charged.order.id, charged.amount, tracking)


ACTIVITIES: list[durable.Activity[Any, Any]] = [reserve, charge, ship]


def main(address: str) -> Receipt:
    with durable.Worker(address, orchestrations=[ProcessOrder], activities=ACTIVITIES), durable.Client(
        address
    ) as client:
        return client.start(ProcessOrder, Order("a-17", "lamp", 2, "4242")).result(timeout=60)


if __name__ == "__main__":
    print(main(parse_address(__doc__ or "")))
