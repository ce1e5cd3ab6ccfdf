"""Runnable examples; each module runs alone with `python -m examples.NAME` against `durable sidecar`."""
