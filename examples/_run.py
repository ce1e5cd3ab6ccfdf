"""Shared command-line handling for the examples."""

from __future__ import annotations

import argparse
import logging

DEFAULT_ADDRESS = "127.0.0.1:4001"


def parse_address(description: str) -> str:
    """Read `--address` (default: where `durable sidecar` listens) and set up logging."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--address",
        default=DEFAULT_ADDRESS,
        help=f"host:port of a running sidecar, for example `durable sidecar` (default {DEFAULT_ADDRESS})",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return str(args.address)
