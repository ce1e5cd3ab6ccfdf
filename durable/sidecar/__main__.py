"""`python -m durable.sidecar`: the same as `durable sidecar`."""

import sys

from durable.cli import main

sys.exit(main(["sidecar", *sys.argv[1:]]))
