"""The `durable` command: its help and the graph subcommand."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _durable(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "durable.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def test_help_lists_commands() -> None:
    completed = _durable("--help")
    assert completed.returncode == 0
    assert "sidecar" in completed.stdout
    assert "graph" in completed.stdout


def test_graph_prints_mermaid() -> None:
    completed = _durable("graph", "examples.order:ProcessOrder")
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert lines[0] == "stateDiagram-v2"
    assert "    [*] --> reserve_stock" in lines
    assert "    reserve_stock --> charge_card" in lines
    assert "    charge_card --> ship_order" in lines
    assert "    ship_order --> [*]" in lines


def test_graph_reports_bad_target() -> None:
    completed = _durable("graph", "examples.order")
    assert completed.returncode == 1
    assert "MODULE:Class" in completed.stderr
    missing = _durable("graph", "examples.no_such_module:X")
    assert missing.returncode == 1
    assert "examples.no_such_module" in missing.stderr
