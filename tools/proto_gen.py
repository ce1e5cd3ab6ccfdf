"""Generate durable/_proto from proto/orchestrator_service.proto.

Usage: python tools/proto_gen.py [OUTPUT_DIR]

protoc writes absolute imports (`import orchestrator_service_pb2`), which only
work when the output folder is on sys.path, so this script rewrites them into
package-relative imports. The unit suite runs it into a temporary folder and
compares the result with the committed files.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
PROTO_FILE = "orchestrator_service.proto"


def generate(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    include = Path(protoc.__file__).parent / "_proto"
    # The mypy plugins are console scripts installed beside this interpreter.
    bin_dir = str(Path(sys.executable).parent)
    os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    status = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{PROTO_DIR}",
            f"-I{include}",
            f"--python_out={out_dir}",
            f"--grpc_python_out={out_dir}",
            f"--mypy_out={out_dir}",
            f"--mypy_grpc_out={out_dir}",
            str(PROTO_DIR / PROTO_FILE),
        ]
    )
    if status != 0:
        raise SystemExit(f"protoc failed with exit status {status}")

    for path in out_dir.glob("*.py*"):
        text = path.read_text()
        fixed = re.sub(
            r"^import orchestrator_service_pb2\b",
            "from . import orchestrator_service_pb2",
            text,
            flags=re.MULTILINE,
        )
        if fixed != text:
            path.write_text(fixed)
    (out_dir / "__init__.py").write_text('"""Generated protobuf and gRPC code; do not edit."""\n')


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "durable" / "_proto")
