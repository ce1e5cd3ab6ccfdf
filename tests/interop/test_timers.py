"""Durable timers with the official SDK's worker and client."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

pytestmark = pytest.mark.interop

# Upper bound on how late a timer may fire on a loaded two-core machine. It
# catches a sidecar that polls for due timers every few seconds, not jitter.
LATENESS_ALLOWANCE_SECONDS = 3.0


@pytest.fixture(scope="module")
def timers(run_scenario: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    return run_scenario("timers")


def test_timer_orchestration_completes(timers: dict[str, Any]) -> None:
    assert timers["state"]["status"] == "COMPLETED"


@pytest.mark.parametrize(
    ("step", "due_seconds"),
    [("first_seconds", 1.0), ("second_seconds", 0.5), ("parallel_seconds", 1.0), ("race_seconds", 0.5)],
)
def test_timer_fires_at_due_time(timers: dict[str, Any], step: str, due_seconds: float) -> None:
    elapsed = timers["state"]["output"][step]
    assert elapsed >= due_seconds, f"{step}: fired after {elapsed} s, before its due time {due_seconds} s"
    assert elapsed <= due_seconds + LATENESS_ALLOWANCE_SECONDS, f"{step}: fired {elapsed} s after start"


def test_timer_wins_race_with_missing_event(timers: dict[str, Any]) -> None:
    assert timers["state"]["output"]["race_winner"] == "timer"


def test_timers_take_their_total_wall_time(timers: dict[str, Any]) -> None:
    # 1 s + 0.5 s + max(0.3, 1.0, 0.6) s + 0.5 s of timers in sequence.
    assert timers["wall_seconds"] >= 3.0
    assert timers["wall_seconds"] <= 3.0 + 2 * LATENESS_ALLOWANCE_SECONDS
