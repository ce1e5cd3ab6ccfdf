"""Launchers and helpers that run sidecars and the official SDK in separate processes."""
