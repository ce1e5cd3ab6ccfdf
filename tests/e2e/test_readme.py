"""The README's tour runs as written and passes mypy --strict."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _tour_source() -> str:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.DOTALL)
    # The first block defines the classes, the second runs them.
    return blocks[0] + "\n" + blocks[1]


def test_readme_tour_runs(tmp_path: Path) -> None:
    script = tmp_path / "tour.py"
    script.write_text(_tour_source())
    completed = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "receipt for 120"


def test_readme_tour_type_checks(tmp_path: Path) -> None:
    script = tmp_path / "tour.py"
    script.write_text(_tour_source())
    completed = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(script)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stdout
