"""The benchmark's workloads: sizes and time budgets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Workload:
    """One row of the results table.

    `scenario` names the function in `_scenarios.WORKLOADS` that both drivers
    run. `budget_s` is how long one run may take before it is reported as not
    finished.
    """

    name: str
    scenario: str
    title: str
    params: dict[str, Any]
    quick_params: dict[str, Any]
    budget_s: float = 300.0


WORKLOADS: list[Workload] = [
    Workload("chain", "chain", "200 orchestrations x 3 activities, started together",
             {"instances": 200, "steps": 3}, {"instances": 20, "steps": 3}),
    Workload("fan_out_1k", "fan_out", "fan-out/fan-in of 1,000 activities",
             {"count": 1000}, {"count": 100}),
    Workload("fan_out_10k", "fan_out", "fan-out/fan-in of 10,000 activities",
             {"count": 10000}, {"count": 1000}, budget_s=400.0),
    Workload("sequential_500", "sequential", "500 sequential activities in one orchestration",
             {"steps": 500}, {"steps": 50}),
    Workload("sequential_2000", "sequential", "2,000 sequential activities in one orchestration",
             {"steps": 2000}, {"steps": 200}, budget_s=300.0),
    Workload("timers", "timers", "100 orchestrations on a 1 s timer",
             {"instances": 100}, {"instances": 10}),
    Workload("events", "events", "100 orchestrations, each event raised right after start",
             {"instances": 100}, {"instances": 10}),
    Workload("idle_1k", "idle", "1,000 instances idle on an event, then finished",
             {"instances": 1000}, {"instances": 50}),
]

# Extra sequential-activity sizes for the cost-per-step table, which also
# takes the 500- and 2,000-step rows of the main table.
SCALING_STEPS = (250, 1000)
SCALING_QUICK_STEPS = (25, 100)

SCALING: list[Workload] = [
    Workload(f"scaling_{steps}", "sequential", f"{steps} sequential activities (cost per step)",
             {"steps": steps}, {"steps": quick}, budget_s=300.0)
    for steps, quick in zip(SCALING_STEPS, SCALING_QUICK_STEPS)
]

ALL_WORKLOADS: dict[str, Workload] = {workload.name: workload for workload in [*WORKLOADS, *SCALING]}

# Filter names for --only that select a group.
GROUPS: dict[str, list[str]] = {
    "main": [workload.name for workload in WORKLOADS],
    "scaling": [workload.name for workload in SCALING],
}

# The workloads whose runs make up the cost-per-step table.
COST_PER_STEP: list[str] = [
    workload.name for workload in [*WORKLOADS, *SCALING] if workload.scenario == "sequential"
]
