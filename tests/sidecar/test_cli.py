"""The `durable sidecar` command."""

from __future__ import annotations

import os
import pathlib
import re
import signal
import subprocess
import sys

import grpc
from google.protobuf import empty_pb2

from durable._proto import orchestrator_service_pb2_grpc as pb_grpc


def test_help_documents_every_option() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "durable.cli", "sidecar", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    for option in [
        "--db", "--host", "--port", "--tls-cert", "--tls-key", "--max-message-size",
        "--lease-timeout", "--health-ping-interval", "--coalesce-window", "--log-level",
    ]:
        assert option in result.stdout
    assert "16 MiB" in result.stdout
    assert "SIGTERM" in result.stdout


def test_port_zero_prints_port_and_stops_on_sigterm(tmp_path: pathlib.Path) -> None:
    db = tmp_path / "cli.db"
    process = subprocess.Popen(
        [sys.executable, "-m", "durable.sidecar", "--port", "0", "--db", str(db), "--log-level", "WARNING"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.fullmatch(r"durable sidecar listening on 127\.0\.0\.1:(\d+)\n", line)
        assert match, line
        port = int(match.group(1))
        assert port > 0
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            pb_grpc.TaskHubSidecarServiceStub(channel).Hello(empty_pb2.Empty(), timeout=10)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
        assert db.exists()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_mismatched_tls_options_rejected() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "durable.cli", "sidecar", "--port", "0", "--db", ":memory:", "--tls-cert", "x.pem"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--tls-key" in result.stderr
