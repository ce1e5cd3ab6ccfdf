"""gRPC channels to a sidecar: address forms, TLS, metadata and message size.

The worker, `Client` and `AsyncClient` open their channels here, so that all
three read addresses, credentials and limits the same way.

Metadata (for example Dapr's `dapr-app-id` or an API token) is not added by a
channel interceptor: every call site passes `ChannelSettings.metadata`
explicitly, which costs nothing per call. An interceptor would add a layer of
Python to each of the thousands of calls a busy worker makes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import json

import attrs
import grpc
import grpc.aio

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "ChannelSettings",
    "Metadata",
    "open_channel",
    "open_aio_channel",
]

# gRPC's own default receive limit. durable applies it to sending as well, so
# an oversized payload fails at once on the side that produced it, with a
# message naming the limit, whatever limits the sidecar has.
DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024

Metadata = tuple[tuple[str, str], ...]

# Reconnect quickly after a sidecar restart: gRPC's defaults start at 1 s and
# grow to 2 minutes, which would leave a worker idle long after the sidecar is
# back. The worker adds its own backoff with jitter on top of this.
_RECONNECT_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 5_000),
)

# Retry calls that failed with UNAVAILABLE (nothing was processed) for about
# 1.5 s, which covers a sidecar restart or a connection that is being
# re-established, before the error reaches the caller.
_RETRY_SERVICE_CONFIG = json.dumps(
    {
        "methodConfig": [
            {
                "name": [{"service": "TaskHubSidecarService"}],
                "retryPolicy": {
                    "maxAttempts": 5,
                    "initialBackoff": "0.1s",
                    "maxBackoff": "1s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    }
)


@attrs.frozen
class ChannelSettings:
    """How to reach a sidecar: target, TLS, per-call metadata and the message size limit."""

    target: str
    secure: bool
    root_certificates: bytes | None
    metadata: Metadata | None
    max_message_bytes: int

    @classmethod
    def build(
        cls,
        address: str,
        *,
        secure: bool = False,
        root_certificates: bytes | None = None,
        metadata: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        max_message_bytes: int | None = None,
    ) -> ChannelSettings:
        """Validate the user's connection arguments.

        `address` is `host:port`; an `http://` prefix is dropped and an
        `https://` prefix turns TLS on. Metadata keys must be lowercase, as
        gRPC requires.
        """
        target = address.strip()
        if target.startswith("https://"):
            target = target[len("https://") :]
            secure = True
        elif target.startswith("http://"):
            target = target[len("http://") :]
        target = target.rstrip("/")
        if not target:
            raise ValueError(f"invalid sidecar address {address!r}: expected host:port")

        if root_certificates is not None and not secure:
            raise ValueError("root_certificates were given but secure=False; pass secure=True to use TLS")

        limit = DEFAULT_MAX_MESSAGE_BYTES if max_message_bytes is None else max_message_bytes
        if limit <= 0:
            raise ValueError(f"max_message_bytes must be positive, got {max_message_bytes}")

        return cls(
            target=target,
            secure=secure,
            root_certificates=root_certificates,
            metadata=_normalize_metadata(metadata),
            max_message_bytes=limit,
        )

    def options(self) -> list[tuple[str, Any]]:
        """Return the gRPC channel options: message size limits, retries of UNAVAILABLE and reconnect backoff."""
        return [
            ("grpc.max_receive_message_length", self.max_message_bytes),
            ("grpc.max_send_message_length", self.max_message_bytes),
            ("grpc.enable_retries", 1),
            ("grpc.service_config", _RETRY_SERVICE_CONFIG),
            *_RECONNECT_OPTIONS,
        ]

    def credentials(self) -> grpc.ChannelCredentials:
        """Return TLS credentials, using the system roots unless root certificates were given."""
        return grpc.ssl_channel_credentials(root_certificates=self.root_certificates)


def open_channel(settings: ChannelSettings) -> grpc.Channel:
    """Open a synchronous channel to the sidecar (connects lazily)."""
    if settings.secure:
        return grpc.secure_channel(settings.target, settings.credentials(), options=settings.options())
    return grpc.insecure_channel(settings.target, options=settings.options())


def open_aio_channel(settings: ChannelSettings) -> grpc.aio.Channel:
    """Open an asyncio channel to the sidecar (connects lazily)."""
    if settings.secure:
        return grpc.aio.secure_channel(settings.target, settings.credentials(), options=settings.options())
    return grpc.aio.insecure_channel(settings.target, options=settings.options())


def _normalize_metadata(metadata: Mapping[str, str] | Iterable[tuple[str, str]] | None) -> Metadata | None:
    if metadata is None:
        return None
    pairs = metadata.items() if isinstance(metadata, Mapping) else metadata
    normalized: list[tuple[str, str]] = []
    for key, value in pairs:
        if key != key.lower():
            raise ValueError(f"invalid metadata key {key!r}: gRPC metadata keys must be lowercase")
        normalized.append((key, value))
    return tuple(normalized) or None
