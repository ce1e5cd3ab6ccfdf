"""Pytest fixtures that run sidecars in child processes on 127.0.0.1.

A conftest makes them available with ``from tests.peer.fixtures import ...``.
Every process a fixture starts is stopped when the fixture ends, even when
the test fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.peer import launch


@pytest.fixture(scope="session")
def official_sidecar() -> Iterator[str]:
    """Return the address of the official in-memory sidecar, shared by the whole session."""
    process, address = launch.start_official_sidecar()
    try:
        yield address
    finally:
        launch.stop(process)


@pytest.fixture
def sidecar_processes(tmp_path: Path) -> Iterator[Callable[..., tuple[launch.ChildProcess, str]]]:
    """Return a function that starts a sidecar process and returns it with its address.

    ``start("official", **options)`` starts the official in-memory sidecar and
    ``start("durable", db_path=None, **options)`` durable's own, on a database
    file under the test's temporary directory unless ``db_path`` is given.
    Options go to ``launch.start_official_sidecar`` or
    ``launch.start_durable_sidecar_process``.
    """
    started: list[launch.ChildProcess] = []

    def start(kind: str, **options: Any) -> tuple[launch.ChildProcess, str]:
        if kind == "official":
            process, address = launch.start_official_sidecar(**options)
        elif kind == "durable":
            db_path = options.pop("db_path", None) or tmp_path / f"sidecar-{len(started)}.db"
            process, address = launch.start_durable_sidecar_process(db_path, **options)
        else:
            raise ValueError(f"unknown sidecar kind {kind!r}: use 'official' or 'durable'")
        started.append(process)
        return process, address

    try:
        yield start
    finally:
        for process in reversed(started):
            launch.stop(process)
