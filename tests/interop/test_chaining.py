"""Chaining and fan-out/fan-in with the official SDK's worker and client."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def chaining(run_scenario: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    return run_scenario("chaining")


@pytest.fixture(scope="module")
def fan_out(run_scenario: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    return run_scenario("fan_out_fan_in", "--count", "200")


def test_chain_completes_with_each_step(chaining: dict[str, Any]) -> None:
    state = chaining["state"]
    assert state["status"] == "COMPLETED"
    assert state["name"] == "chain"
    assert state["input"] == 5
    assert state["output"] == {"steps": [6, 60, "result=60"], "instance_id": "chain-1"}


def test_chain_history_records_three_tasks(chaining: dict[str, Any]) -> None:
    history = chaining["history"]
    assert history.get("ExecutionStartedEvent") == 1
    assert history.get("TaskScheduledEvent") == 3
    assert history.get("TaskCompletedEvent") == 3
    assert history.get("ExecutionCompletedEvent") == 1
    assert "TaskFailedEvent" not in history


def test_fan_out_of_200_gathers_every_result(fan_out: dict[str, Any]) -> None:
    state = fan_out["state"]
    assert state["status"] == "COMPLETED"
    assert state["output"]["squares"] == [i * i for i in range(200)]
    assert state["output"]["total"] == sum(i * i for i in range(200))


def test_fan_out_history_has_200_tasks_once(fan_out: dict[str, Any]) -> None:
    history = fan_out["history"]
    assert history.get("TaskScheduledEvent") == 200
    assert history.get("TaskCompletedEvent") == 200
    assert history.get("ExecutionCompletedEvent") == 1
