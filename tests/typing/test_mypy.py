"""mypy --strict accepts the accept/ snippets and rejects each marked line of reject/.

Every line of a reject/ file that ends in `# E: <text>` must produce a mypy
error containing that text on that line, and no other line may produce one.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
EXPECTED = re.compile(r"#\s*E:\s*(.+?)\s*$")
ERROR_LINE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+): error: (?P<message>.*)$")


def _mypy(paths: list[Path]) -> list[tuple[str, int, str]]:
    completed = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", "--hide-error-context",
         "--show-absolute-path", *map(str, paths)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    errors = []
    for line in completed.stdout.splitlines():
        match = ERROR_LINE.match(line)
        if match:
            errors.append((str(Path(match["file"]).resolve()), int(match["line"]), match["message"]))
    if completed.returncode not in (0, 1) or (completed.returncode == 1 and not errors):
        pytest.fail(f"mypy did not run cleanly:\n{completed.stdout}\n{completed.stderr}")
    return errors


def test_accepted_snippets_type_check() -> None:
    errors = _mypy(sorted((HERE / "accept").glob("*.py")))
    assert errors == []


def test_rejected_snippets_fail_with_expected_messages() -> None:
    files = sorted((HERE / "reject").glob("*.py"))
    errors = _mypy(files)
    by_place: dict[tuple[str, int], list[str]] = {}
    for file, line, message in errors:
        by_place.setdefault((file, line), []).append(message)

    expected: dict[tuple[str, int], str] = {}
    for path in files:
        for number, text in enumerate(path.read_text().splitlines(), start=1):
            match = EXPECTED.search(text)
            if match:
                expected[(str(path), number)] = match.group(1)
    assert expected, "no `# E:` markers found"

    for (file, line), wanted in expected.items():
        messages = by_place.get((file, line), [])
        assert any(wanted in message for message in messages), (
            f"{Path(file).name}:{line}: expected an error containing {wanted!r}, got {messages}"
        )
    unexpected = {place: msgs for place, msgs in by_place.items() if place not in expected}
    assert unexpected == {}
