"""The embedded Durable Task sidecar: a gRPC server that keeps orchestrations in SQLite."""

from ._server import DEFAULT_MAX_MESSAGE_BYTES, Sidecar
from ._store import SchemaVersionError

__all__ = ["Sidecar", "SchemaVersionError", "DEFAULT_MAX_MESSAGE_BYTES"]
