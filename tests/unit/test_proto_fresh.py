"""The committed generated code must match what proto/ generates today."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_generated_code_matches_proto(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(ROOT / "tools" / "proto_gen.py"), str(tmp_path)], check=True)
    committed = ROOT / "durable" / "_proto"
    generated = sorted(p.name for p in tmp_path.iterdir() if p.is_file())
    assert generated == sorted(p.name for p in committed.iterdir() if p.is_file() and p.suffix in {".py", ".pyi"})
    for name in generated:
        assert (tmp_path / name).read_text() == (committed / name).read_text(), (
            f"durable/_proto/{name} is stale: run `make proto-gen` and commit the result"
        )


def test_method_paths_have_no_package() -> None:
    from durable._proto import orchestrator_service_pb2 as pb

    service = pb.DESCRIPTOR.services_by_name["TaskHubSidecarService"]
    assert service.full_name == "TaskHubSidecarService"
    assert service.methods_by_name["GetWorkItems"].full_name == "TaskHubSidecarService.GetWorkItems"
