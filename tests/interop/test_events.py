"""External events with the official SDK's worker and client."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def events(run_scenario: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    return run_scenario("external_events")


def test_event_raised_right_after_start(events: dict[str, Any]) -> None:
    state = events["approval"]
    assert state["status"] == "COMPLETED"
    assert state["output"] == {"decision": {"approved": True, "by": "ops"}}


def test_three_events_of_one_name_in_order(events: dict[str, Any]) -> None:
    state = events["collector"]
    assert state["status"] == "COMPLETED"
    assert state["output"] == ["first", "second", "third"]


def test_event_wins_race_with_timer(events: dict[str, Any]) -> None:
    state = events["deadline"]
    assert state["status"] == "COMPLETED"
    assert state["output"] == {"winner": "event", "answer": 42}


def test_event_raised_before_wait_is_kept(events: dict[str, Any]) -> None:
    state = events["late"]
    assert state["status"] == "COMPLETED"
    assert state["output"] == {"early": "kept"}


def test_event_for_unknown_instance_not_found(events: dict[str, Any]) -> None:
    assert events["unknown_instance_code"] == "NOT_FOUND"


def test_events_delivered_without_delay(events: dict[str, Any]) -> None:
    # The slowest instance waits on a 1 s timer before it reads its event.
    assert events["wait_seconds"] < 10.0
