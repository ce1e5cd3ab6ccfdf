"""Fixtures for running the official SDK's scenario scripts against a sidecar.

The sidecar under test is chosen with ``DURABLE_INTEROP_SIDECAR``:

* ``embedded`` (the default): durable's ``Sidecar`` in this process, on an
  in-memory database;
* ``process``: ``python -m durable.sidecar`` in a child process, on a file database;
* ``official``: the official SDK's in-memory sidecar in a child process. It
  checks the scenarios themselves; the tests of features that the in-memory
  backend lacks are expected to fail there (see ``gap_in_official_sidecar``).

Each test module gets its own sidecar, so fixed instance ids never collide.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.peer import launch  # noqa: E402

SCENARIO_DIR = Path(__file__).resolve().parent / "peer_scenarios"
SIDECAR_KINDS = ("embedded", "process", "official")
SIDECAR_KIND = os.environ.get("DURABLE_INTEROP_SIDECAR", "embedded")
SCENARIO_TIMEOUT_SECONDS = 90.0

if SIDECAR_KIND not in SIDECAR_KINDS:
    raise pytest.UsageError(
        f"DURABLE_INTEROP_SIDECAR={SIDECAR_KIND!r} is invalid: use one of {', '.join(SIDECAR_KINDS)}"
    )


def gap_in_official_sidecar(reason: str) -> pytest.MarkDecorator:
    """Mark a test that the official in-memory sidecar is known to fail, and only there."""
    return pytest.mark.xfail(SIDECAR_KIND == "official", reason=reason, strict=True)


@dataclass(frozen=True)
class SidecarUnderTest:
    kind: str
    address: str


@pytest.fixture(scope="module")
def sidecar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SidecarUnderTest]:
    """Start the sidecar chosen by DURABLE_INTEROP_SIDECAR on 127.0.0.1 and stop it afterwards."""
    if SIDECAR_KIND == "embedded":
        from durable.sidecar import Sidecar

        with Sidecar(db=":memory:", host="127.0.0.1", port=0) as embedded:
            yield SidecarUnderTest(SIDECAR_KIND, embedded.address)
        return

    if SIDECAR_KIND == "process":
        db_path = tmp_path_factory.mktemp("sidecar") / "interop.db"
        process, address = launch.start_durable_sidecar_process(db_path)
    else:
        process, address = launch.start_official_sidecar()
    try:
        yield SidecarUnderTest(SIDECAR_KIND, address)
    finally:
        launch.stop(process)


@pytest.fixture(scope="module")
def run_scenario(sidecar: SidecarUnderTest) -> Callable[..., dict[str, Any]]:
    """Return a function that runs a scenario script against the module's sidecar."""

    def run(name: str, *args: str, timeout: float = SCENARIO_TIMEOUT_SECONDS) -> dict[str, Any]:
        return launch.run_peer_script(
            SCENARIO_DIR / f"{name}.py", ["--address", sidecar.address, *args], timeout=timeout,
        )

    return run
