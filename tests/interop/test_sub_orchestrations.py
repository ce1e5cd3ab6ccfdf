"""Sub-orchestrations with the official SDK's worker and client."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from .conftest import gap_in_official_sidecar

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def subs(run_scenario: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    return run_scenario("sub_orchestrations")


def test_parent_gathers_child_results(subs: dict[str, Any]) -> None:
    parent = subs["parent"]
    assert parent["status"] == "COMPLETED"
    assert parent["output"]["results"] == ["ALPHA", "NESTED/DEEP!", "OMEGA"]


def test_child_failure_message_reaches_parent(subs: dict[str, Any]) -> None:
    failure = subs["parent"]["output"]["failure"]
    assert failure is not None, "the failing child's task did not fail in the parent"
    assert failure["message"] == "child cannot handle this"


@gap_in_official_sidecar("the in-memory backend rebuilds a child's failure from its message only")
def test_child_failure_type_reaches_parent(subs: dict[str, Any]) -> None:
    assert subs["parent"]["output"]["failure"]["type"] == "builtins.ValueError"


@pytest.mark.parametrize(
    ("instance_id", "name", "output"),
    [
        ("subs-parent-child-0", "child", "ALPHA"),
        ("subs-parent-child-1", "child", "NESTED/DEEP!"),
        ("subs-parent-child-2", "child", "OMEGA"),
        ("subs-parent-child-1-grandchild", "grandchild", "DEEP!"),
    ],
)
def test_child_instance_completed(subs: dict[str, Any], instance_id: str, name: str, output: str) -> None:
    child = subs["children"][instance_id]
    assert child is not None, f"{instance_id} does not exist"
    assert child["status"] == "COMPLETED"
    assert child["name"] == name
    assert child["output"] == output


def test_failing_child_instance_failed(subs: dict[str, Any]) -> None:
    child = subs["children"]["subs-parent-broken"]
    assert child is not None, "subs-parent-broken does not exist"
    assert child["status"] == "FAILED"
    assert child["failure_message"] == "child cannot handle this"
    assert child["failure_type"] == "builtins.ValueError"
