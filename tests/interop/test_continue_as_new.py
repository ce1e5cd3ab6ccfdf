"""Continue-as-new with the official SDK's worker and client."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def continued(run_scenario: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    return run_scenario("continue_as_new")


def test_counter_restarts_ten_times(continued: dict[str, Any]) -> None:
    state = continued["counter"]
    assert state["status"] == "COMPLETED"
    assert state["output"] == {"count": 10, "generations": 11}
    assert state["input"]["count"] == 10


def test_history_holds_last_execution_only(continued: dict[str, Any]) -> None:
    history = continued["counter_history"]
    assert history.get("ExecutionStartedEvent") == 1
    assert history.get("ExecutionCompletedEvent") == 1


def test_events_carried_into_next_execution(continued: dict[str, Any]) -> None:
    state = continued["accumulator"]
    assert state["status"] == "COMPLETED"
    assert state["output"] == {"received": [1, 2, 3, 4, 5], "total": 15}


def test_parent_gets_last_child_execution(continued: dict[str, Any]) -> None:
    state = continued["parent"]
    assert state["status"] == "COMPLETED"
    assert state["output"] == {"child": {"count": 3, "generations": 4}}
