"""Purge with the official SDK's client."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from .conftest import gap_in_official_sidecar

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def purge(run_scenario: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    return run_scenario("purge")


def test_purge_completed_instance(purge: dict[str, Any]) -> None:
    assert purge["done_before"]["status"] == "COMPLETED"
    assert purge["done_purge"] == {"deleted": 1, "error": None}
    assert purge["done_after"] is None


def test_purge_of_purged_instance_deletes_nothing(purge: dict[str, Any]) -> None:
    # For an unknown id, the sidecar may return a count of 0 or NOT_FOUND.
    outcome = purge["done_purge_again"]
    assert outcome in ({"deleted": 0, "error": None}, {"deleted": None, "error": "NOT_FOUND"})


def test_purge_of_running_instance_rejected(purge: dict[str, Any]) -> None:
    # The sidecar may return a count of 0 or reject the request with FAILED_PRECONDITION.
    outcome = purge["running_purge"]
    assert outcome in ({"deleted": 0, "error": None}, {"deleted": None, "error": "FAILED_PRECONDITION"})
    assert purge["running_after"] is not None, "the running instance was purged"
    assert purge["running_after"]["status"] == "RUNNING"


@gap_in_official_sidecar("the in-memory backend ignores the recursive flag of a purge request")
def test_recursive_purge_removes_child(purge: dict[str, Any]) -> None:
    assert purge["parent_before"]["status"] == "COMPLETED"
    assert purge["child_before"]["status"] == "COMPLETED"
    assert purge["recursive_purge"] == {"deleted": 2, "error": None}
    assert purge["parent_after"] is None
    assert purge["child_after"] is None


def test_purge_by_filter(purge: dict[str, Any]) -> None:
    assert purge["filter_purge"] == {"deleted": 3, "error": None}
    assert purge["batch_after"] == {f"purge-batch-{i}": None for i in range(3)}
    assert purge["running_after_filter"] is not None, "the filter purged a running instance"
    assert purge["running_after_filter"]["status"] == "RUNNING"


def test_purge_terminated_instance(purge: dict[str, Any]) -> None:
    assert purge["running_terminated"]["status"] == "TERMINATED"
    assert purge["terminated_purge"] == {"deleted": 1, "error": None}
