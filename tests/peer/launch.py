"""Start and stop sidecars and official-SDK scripts in child processes.

This module uses only the standard library, so that the test suites and the
benchmark can import it from durable's own environment. The official
``durabletask`` SDK runs only in child processes started with the peer
interpreter: ``DURABLE_PEER_PYTHON``, by default ``.venv-peer/bin/python`` at
the repository root. Its generated protobuf module defines the same message
names as durable's, so the two cannot share one process.

Every server started here listens on 127.0.0.1 only.
"""

from __future__ import annotations

import collections
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any, Sequence

REPO_ROOT = Path(__file__).resolve().parents[2]
PEER_DIR = Path(__file__).resolve().parent
INMEMORY_SIDECAR_SCRIPT = PEER_DIR / "inmemory_sidecar.py"

# Matches "127.0.0.1:PORT" (or "localhost:PORT") anywhere in a line, which is
# how both sidecars announce their address.
_ADDRESS_PATTERN = re.compile(r"\b(?:127\.0\.0\.1|localhost):(\d{1,5})\b")
# Fallback for a line such as "listening on port 12345".
_PORT_PATTERN = re.compile(r"\bport\D{0,3}(\d{1,5})\b", re.IGNORECASE)

START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
OUTPUT_TAIL_LINES = 200


class SidecarStartError(RuntimeError):
    """A sidecar process exited or stayed silent before announcing its address."""


class ChildProcess(subprocess.Popen[str]):
    """A child process whose stdout and stderr are drained by background threads.

    Draining keeps a chatty child from blocking on a full pipe. The last lines
    of each stream are kept for error messages (``output_tail``).
    """

    def __init__(self, args: Sequence[str], **kwargs: Any) -> None:
        super().__init__(
            list(args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            bufsize=1,
            **kwargs,
        )
        self._stdout_lines: collections.deque[str] = collections.deque(maxlen=OUTPUT_TAIL_LINES)
        self._stderr_lines: collections.deque[str] = collections.deque(maxlen=OUTPUT_TAIL_LINES)
        self._line_arrived = threading.Condition()
        self._stdout_seen: list[str] = []
        self._readers = [
            threading.Thread(target=self._drain, args=(self.stdout, self._stdout_lines, True), daemon=True),
            threading.Thread(target=self._drain, args=(self.stderr, self._stderr_lines, False), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _drain(self, stream: IO[str] | None, tail: collections.deque[str], is_stdout: bool) -> None:
        assert stream is not None
        for line in stream:
            line = line.rstrip("\n")
            with self._line_arrived:
                tail.append(line)
                if is_stdout and len(self._stdout_seen) < OUTPUT_TAIL_LINES:
                    self._stdout_seen.append(line)
                self._line_arrived.notify_all()
        with self._line_arrived:
            self._line_arrived.notify_all()

    def wait_for_stdout(self, pattern: re.Pattern[str], timeout: float) -> re.Match[str] | None:
        """Wait until a line of stdout matches ``pattern``; None on timeout or exit."""
        deadline = time.monotonic() + timeout
        checked = 0
        with self._line_arrived:
            while True:
                while checked < len(self._stdout_seen):
                    match = pattern.search(self._stdout_seen[checked])
                    checked += 1
                    if match:
                        return match
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.poll() is not None and not self._readers[0].is_alive()):
                    return None
                self._line_arrived.wait(min(remaining, 0.2))

    def output_tail(self, lines: int = 40) -> str:
        """Return the last lines of stdout and stderr, for error messages."""
        with self._line_arrived:
            stdout = list(self._stdout_lines)[-lines:]
            stderr = list(self._stderr_lines)[-lines:]
        return "--- stdout ---\n" + "\n".join(stdout) + "\n--- stderr ---\n" + "\n".join(stderr)


def peer_python() -> str:
    """Return the interpreter that has the official ``durabletask`` SDK installed.

    Raises FileNotFoundError when it is missing, with the command that installs it.
    """
    configured = os.environ.get("DURABLE_PEER_PYTHON")
    path = Path(configured) if configured else REPO_ROOT / ".venv-peer" / "bin" / "python"
    if not path.exists():
        raise FileNotFoundError(
            f"peer interpreter {path} not found: run `make install-peer` at the "
            "repository root, or set DURABLE_PEER_PYTHON to a Python that has "
            "durabletask==1.12.0 installed"
        )
    return str(path)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago.

    Another process may take it before the caller binds it, so use it only
    where a fixed port is needed (such as restarting a sidecar on the same address).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    if extra:
        env.update(extra)
    return env


def _start_server(args: Sequence[str], name: str, timeout: float,
                  env: dict[str, str] | None = None) -> tuple[ChildProcess, str]:
    process = ChildProcess(args, cwd=str(REPO_ROOT), env=_child_env(env))
    try:
        match = process.wait_for_stdout(_ADDRESS_PATTERN, timeout)
        if match is None:
            match = process.wait_for_stdout(_PORT_PATTERN, 0)
        if match is None:
            state = (f"exited with status {process.returncode}"
                     if process.poll() is not None else f"printed no address within {timeout:g} s")
            raise SidecarStartError(
                f"{name} {state}; command: {' '.join(args)}\n{process.output_tail()}"
            )
    except BaseException:
        stop(process)
        raise
    return process, f"127.0.0.1:{int(match.group(1))}"


def start_official_sidecar(port: int = 0, *, max_message_bytes: int | None = None,
                           max_history_size: int | None = None,
                           timeout: float = START_TIMEOUT_SECONDS) -> tuple[ChildProcess, str]:
    """Start the official SDK's in-memory sidecar on 127.0.0.1.

    `max_history_size` raises the backend's limit of history events per
    instance (10,000 by default). Returns the process and its address
    ``127.0.0.1:PORT``. Stop it with ``stop()``.
    """
    args = [peer_python(), str(INMEMORY_SIDECAR_SCRIPT), "--port", str(port)]
    if max_message_bytes is not None:
        args += ["--max-message-bytes", str(max_message_bytes)]
    if max_history_size is not None:
        args += ["--max-history-size", str(max_history_size)]
    return _start_server(args, "official in-memory sidecar", timeout)


def start_durable_sidecar_process(db_path: str | os.PathLike[str], port: int = 0, *,
                                  extra_args: Sequence[str] = (),
                                  timeout: float = START_TIMEOUT_SECONDS) -> tuple[ChildProcess, str]:
    """Start durable's sidecar (``python -m durable.sidecar``) on 127.0.0.1.

    It runs with the current interpreter, which must be durable's environment.
    Returns the process and its address ``127.0.0.1:PORT``. Stop it with
    ``stop()``, or crash it with ``kill()``.
    """
    args = [
        sys.executable, "-m", "durable.sidecar",
        "--db", os.fspath(db_path),
        "--host", "127.0.0.1",
        "--port", str(port),
        *extra_args,
    ]
    return _start_server(args, "durable sidecar", timeout)


def stop(process: subprocess.Popen[Any], timeout: float = STOP_TIMEOUT_SECONDS) -> int:
    """Stop a child process with SIGTERM, then SIGKILL after ``timeout`` seconds.

    Returns its exit status (negative for a signal, as in ``Popen.returncode``).
    """
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)
    return int(process.returncode)


def kill(process: subprocess.Popen[Any], timeout: float = STOP_TIMEOUT_SECONDS) -> int:
    """Kill a child process with SIGKILL, as a crash would, and reap it."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout)
    return int(process.returncode)


def run_peer_script(script: str | os.PathLike[str], args: Sequence[str] = (), *,
                    timeout: float = 120.0,
                    env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run a script with the peer interpreter and return the JSON object it prints.

    The script prints its result as one stdout line starting with ``RESULT ``.
    Raises AssertionError with the script's output when it fails, times out or
    prints no result.
    """
    command = [peer_python(), os.fspath(script), *args]
    try:
        completed = subprocess.run(
            command, cwd=str(REPO_ROOT), env=_child_env(env), stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=timeout,
        )
    except subprocess.TimeoutExpired as error:
        raise AssertionError(
            f"{Path(script).name} timed out after {timeout:g} s\n"
            f"--- stdout ---\n{_text(error.stdout)}\n--- stderr ---\n{_text(error.stderr)[-6000:]}"
        ) from None

    result_lines = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
    if completed.returncode != 0 or not result_lines:
        raise AssertionError(
            f"{Path(script).name} exited with status {completed.returncode} "
            f"and {len(result_lines)} result lines\n"
            f"--- stdout ---\n{completed.stdout[-6000:]}\n--- stderr ---\n{completed.stderr[-6000:]}"
        )
    result: dict[str, Any] = json.loads(result_lines[-1][len("RESULT "):])
    return result


def _text(output: str | bytes | None) -> str:
    if output is None:
        return ""
    if isinstance(output, bytes):
        return output.decode("utf-8", "replace")
    return output
