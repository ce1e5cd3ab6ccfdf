"""The `durable` command line: one subcommand per tool.

Each subcommand registers itself with a function that adds its parser and
sets `handler`, the function that runs it and returns the exit status.
"""

from __future__ import annotations

import argparse
import logging
import re
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from types import FrameType

__all__ = ["main", "build_parser"]

_SIZE_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1024, "m": 1000**2, "mb": 1000**2, "mib": 1024**2,
               "g": 1000**3, "gb": 1000**3, "gib": 1024**3}


def _message_size(text: str) -> int:
    match = re.fullmatch(r"\s*(\d+)\s*([a-zA-Z]*)\s*", text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _SIZE_UNITS:
        raise argparse.ArgumentTypeError(f"invalid size {text!r}: use bytes, or a number with KiB, MiB or GiB")
    size = int(match.group(1)) * _SIZE_UNITS[unit]
    if size <= 0:
        raise argparse.ArgumentTypeError(f"invalid size {text!r}: it must be larger than 0")
    return size


def _seconds(text: str, *, allow_zero: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number of seconds {text!r}") from None
    if value < 0 or (value == 0 and not allow_zero):
        bound = "0 or more" if allow_zero else "larger than 0"
        raise argparse.ArgumentTypeError(f"invalid number of seconds {text!r}: it must be {bound}")
    return value


def _positive_seconds(text: str) -> float:
    return _seconds(text, allow_zero=False)


def _non_negative_seconds(text: str) -> float:
    return _seconds(text, allow_zero=True)


def _add_sidecar_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from durable.sidecar._server import DEFAULT_MAX_MESSAGE_BYTES

    parser = commands.add_parser(
        "sidecar",
        help="run the embedded Durable Task sidecar on a SQLite database",
        description=(
            "Run durable's embedded Durable Task sidecar: a gRPC server for Durable Task clients and "
            "workers that keeps orchestrations in one SQLite database on this machine. It stops "
            "cleanly on SIGINT or SIGTERM."
        ),
    )
    parser.add_argument(
        "--db", default="./durable.db", metavar="PATH",
        help="SQLite database file, created if missing; ':memory:' keeps nothing (default: %(default)s)",
    )
    parser.add_argument(
        "--host", default="127.0.0.1",
        help="address to listen on; use 0.0.0.0 to accept other machines (default: %(default)s)",
    )
    parser.add_argument(
        "--port", type=int, default=4001,
        help="TCP port to listen on; 0 picks a free port and prints it (default: %(default)s)",
    )
    parser.add_argument("--tls-cert", metavar="PATH", help="PEM certificate file; serve TLS (needs --tls-key)")
    parser.add_argument("--tls-key", metavar="PATH", help="PEM private key file for --tls-cert")
    parser.add_argument(
        "--max-message-size", type=_message_size, default=DEFAULT_MAX_MESSAGE_BYTES, metavar="SIZE",
        help=(
            "largest request accepted, in bytes or with a KiB, MiB or GiB suffix; larger requests get "
            f"RESOURCE_EXHAUSTED (default: {DEFAULT_MAX_MESSAGE_BYTES} bytes = 16 MiB, gRPC's own default is 4 MiB)"
        ),
    )
    parser.add_argument(
        "--lease-timeout", type=_positive_seconds, default=300.0, metavar="SECONDS",
        help="redeliver a work item that a connected worker has not completed after this long (default: %(default)s)",
    )
    parser.add_argument(
        "--health-ping-interval", type=_positive_seconds, default=30.0, metavar="SECONDS",
        help="send a health ping on a worker stream idle for this long (default: %(default)s)",
    )
    parser.add_argument(
        "--coalesce-window", type=_non_negative_seconds, default=0.01, metavar="SECONDS",
        help=(
            "how long an orchestration with activities still running waits for more results before "
            "its next work item, plus 25 microseconds per running activity, up to 0.25 s or this value "
            "if larger; 0 sends each result at once (default: %(default)s)"
        ),
    )
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="minimum level of log messages written to standard error (default: %(default)s)",
    )
    parser.set_defaults(handler=_run_sidecar)


def _run_sidecar(args: argparse.Namespace) -> int:
    from durable.sidecar import SchemaVersionError, Sidecar

    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if (args.tls_cert is None) != (args.tls_key is None):
        print("durable sidecar: --tls-cert and --tls-key must be given together", file=sys.stderr)
        return 2
    sidecar = Sidecar(
        db=args.db,
        host=args.host,
        port=args.port,
        max_message_bytes=args.max_message_size,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        lease_timeout=args.lease_timeout,
        health_ping_interval=args.health_ping_interval,
        coalesce_window=args.coalesce_window,
    )
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        logging.getLogger("durable.sidecar").info("Received %s", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            sidecar.start()
        except (SchemaVersionError, OSError) as error:
            print(f"durable sidecar: {error}", file=sys.stderr)
            return 1
        # The port line is for scripts that start the sidecar with --port 0.
        print(f"durable sidecar listening on {sidecar.address}", flush=True)
        while not stop.wait(1.0):
            pass
        sidecar.stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _add_graph_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "graph",
        help="print an orchestration class's state machine as a Mermaid diagram",
        description=(
            "Import MODULE, compile its orchestration class and print the state machine (steps, "
            "transitions, and the activities, events and timers each step waits on) as a Mermaid "
            "state diagram. The current folder is on the import path."
        ),
    )
    parser.add_argument("target", metavar="MODULE:Class", help="for example examples.order:ProcessOrder")
    parser.set_defaults(handler=_run_graph)


def _run_graph(args: argparse.Namespace) -> int:
    from durable._graph import load_machine, to_mermaid
    from durable.errors import OrchestrationDefinitionError

    if "" not in sys.path:
        sys.path.insert(0, "")
    try:
        machine = load_machine(args.target)
    except (ValueError, ImportError, OrchestrationDefinitionError) as error:
        print(f"durable graph: {error}", file=sys.stderr)
        return 1
    sys.stdout.write(to_mermaid(machine))
    return 0


# Each entry adds one subcommand to the parser.
COMMANDS: list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = [
    _add_sidecar_command,
    _add_graph_command,
]


def build_parser() -> argparse.ArgumentParser:
    """Build the parser of the `durable` command with every registered subcommand."""
    parser = argparse.ArgumentParser(prog="durable", description="Tools for durable orchestrations.")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for add_command in COMMANDS:
        add_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `durable` command and return its exit status."""
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
