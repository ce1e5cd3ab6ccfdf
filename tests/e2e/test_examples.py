"""Every example in examples/ runs against the session's sidecar and gives its documented result."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from examples import chaining, fan_out_fan_in, human_interaction, lifecycle, monitor, order, sub_orchestrations
from tests.e2e.conftest import SidecarUnderTest

ROOT = Path(__file__).resolve().parents[2]


def test_order(sidecar: SidecarUnderTest) -> None:
    assert order.main(sidecar.address) == order.Receipt("a-17", 22.8, "TRACK-A-17")


def test_demo_prints_input_steps_and_result() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "examples.demo"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr
    labels = [line.split()[0] for line in completed.stdout.splitlines() if line.strip()]
    assert labels == ["sidecar", "worker", "input", "step", "step", "step", "result"]
    steps = [line.split()[1] for line in completed.stdout.splitlines() if line.startswith("step")]
    assert steps == ["reserve_stock", "charge_card", "ship_order"]
    assert "TRACK-A-17" in completed.stdout


def test_chaining(sidecar: SidecarUnderTest) -> None:
    assert chaining.main(sidecar.address) == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]


def test_fan_out_fan_in(sidecar: SidecarUnderTest) -> None:
    # "item-0" .. "item-9" have 6 characters, "item-10" .. "item-99" have 7.
    assert fan_out_fan_in.main(sidecar.address, count=100) == 10 * 6 + 90 * 7


def test_human_interaction(sidecar: SidecarUnderTest) -> None:
    quick, slow = human_interaction.main(sidecar.address)
    assert quick == human_interaction.Approval(True, "lead")
    assert slow == human_interaction.Approval(False, "manager")


def test_monitor(sidecar: SidecarUnderTest) -> None:
    assert monitor.main(sidecar.address) == "nightly-export finished after 3 polls"


def test_sub_orchestrations(sidecar: SidecarUnderTest) -> None:
    report = sub_orchestrations.main(sidecar.address)
    assert report.shipped == ["A1 -> Oslo", "B2-flaky -> Lima"]
    assert list(report.failed) == ["C3"]
    if sidecar.kind == "official":
        # The official in-memory sidecar rebuilds a child's failure from its
        # message alone, so the original error type is lost there.
        assert "order C3 has no delivery address" in report.failed["C3"]
    else:
        assert report.failed["C3"] == "builtins.ValueError: order C3 has no delivery address"


def test_lifecycle(sidecar: SidecarUnderTest) -> None:
    outcome = lifecycle.main(sidecar.address)
    assert outcome == {"while suspended": "SUSPENDED", "countdown": "2 ticks", "forever": "TERMINATED"}
