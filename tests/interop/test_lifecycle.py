"""Suspend, resume and terminate with the official SDK's worker and client."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from .conftest import gap_in_official_sidecar

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def suspend(run_scenario: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    return run_scenario("suspend_resume")


@pytest.fixture(scope="module")
def terminate(run_scenario: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    return run_scenario("terminate")


def test_suspend_shows_suspended(suspend: dict[str, Any]) -> None:
    assert suspend["running"]["status"] == "RUNNING"
    assert suspend["suspended"]["status"] == "SUSPENDED"


def test_event_held_while_suspended(suspend: dict[str, Any]) -> None:
    state = suspend["while_suspended"]
    assert state["status"] == "SUSPENDED"
    assert state["output"] is None


def test_resume_delivers_held_event(suspend: dict[str, Any]) -> None:
    final = suspend["final"]
    assert final["status"] == "COMPLETED"
    assert final["output"] == {"signal": "green", "stamped": "stamped:green"}


@gap_in_official_sidecar("the in-memory backend forwards a resume of a running instance, which fails it")
def test_resume_of_running_instance_ignored(suspend: dict[str, Any]) -> None:
    final = suspend["stray_resume_final"]
    assert final["status"] == "COMPLETED", final["failure_message"]
    assert final["output"] == {"signal": "plain", "stamped": "stamped:plain"}


def test_recursive_terminate_ends_parent(terminate: dict[str, Any]) -> None:
    assert terminate["recursive_child_before"]["status"] == "RUNNING"
    parent = terminate["recursive_parent"]
    assert parent["status"] == "TERMINATED"
    assert parent["output"] == "stopped by test"


@gap_in_official_sidecar("the in-memory backend ignores the recursive flag of a terminate request")
def test_recursive_terminate_ends_child(terminate: dict[str, Any]) -> None:
    child = terminate["recursive_child"]
    assert "timed_out" not in child, f"the child is still {child['status']}"
    assert child["status"] == "TERMINATED"
    assert child["output"] == "stopped by test"


def test_shallow_terminate_spares_child(terminate: dict[str, Any]) -> None:
    parent = terminate["shallow_parent"]
    assert parent["status"] == "TERMINATED"
    assert parent["output"] == "parent only"
    assert terminate["shallow_child_after_1s"]["status"] == "RUNNING"


def test_child_terminated_on_its_own(terminate: dict[str, Any]) -> None:
    child = terminate["shallow_child"]
    assert child["status"] == "TERMINATED"
    assert child["output"] == "child now"


def test_terminate_suspended_instance(terminate: dict[str, Any]) -> None:
    assert terminate["suspended_before"]["status"] == "SUSPENDED"
    state = terminate["suspended_terminated"]
    assert "timed_out" not in state, f"the instance is still {state['status']}"
    assert state["status"] == "TERMINATED"
    assert state["output"] == {"reason": "cleanup"}
