"""The `Sidecar` class: an in-process gRPC server over a SQLite database."""

from __future__ import annotations

import logging
import threading
from concurrent import futures
from types import TracebackType

import grpc

from ._dispatch import Dispatcher
from ._engine import Engine
from ._service import SidecarService, build_handler
from ._store import Store

__all__ = ["Sidecar", "DEFAULT_MAX_MESSAGE_BYTES"]

logger = logging.getLogger("durable.sidecar")

DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024

_WILDCARD_HOSTS = {"0.0.0.0": "127.0.0.1", "::": "::1", "[::]": "::1", "": "127.0.0.1"}


def _format_address(host: str, port: int) -> str:
    host = _WILDCARD_HOSTS.get(host, host)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port}"


def _bind_target(host: str, port: int) -> str:
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port}"


class Sidecar:
    """A Durable Task sidecar that keeps orchestrations in one SQLite database.

    It serves the `TaskHubSidecarService` gRPC API that Durable Task clients and
    workers speak, from server threads inside the current process. `db` is a file
    path (the state survives restarts) or ":memory:" (the state ends with the
    sidecar). Port 0 picks a free port; read it from `port` or `address` after
    `start()`.

    It runs on one machine. To scale out, point the same workers and clients at a
    distributed sidecar such as Dapr or the Durable Task Go sidecar.

        with Sidecar() as sidecar:
            client = durable.Client(sidecar.address)
    """

    def __init__(
        self,
        db: str = ":memory:",
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        tls_cert: str | None = None,
        tls_key: str | None = None,
        lease_timeout: float = 300.0,
        health_ping_interval: float = 30.0,
        max_workers: int = 128,
        coalesce_window: float = 0.01,
    ) -> None:
        """Configure the sidecar; nothing is opened or bound until `start()`.

        `max_message_bytes` limits each request; larger ones are rejected with
        RESOURCE_EXHAUSTED. `tls_cert` and `tls_key` are PEM file paths and must be
        given together. A work item that a connected worker neither completes nor
        abandons within `lease_timeout` seconds is redelivered. Idle worker streams
        get a health ping every `health_ping_interval` seconds. `max_workers` bounds
        the server threads, and each open worker stream or waiting call holds one.
        `coalesce_window` (seconds) is how long an instance with activities still
        out waits for more results before its next work item, so that a fan-in
        gets many results per work item. The wait grows by 25 µs per activity
        still out, up to 0.25 s (or `coalesce_window` if that is larger), and the
        last result of a fan-in is dispatched at once. 0 dispatches every result
        at once.
        """
        if (tls_cert is None) != (tls_key is None):
            raise ValueError("tls_cert and tls_key must be given together")
        if max_message_bytes <= 0:
            raise ValueError(f"max_message_bytes must be positive, got {max_message_bytes}")
        if lease_timeout <= 0 or health_ping_interval <= 0:
            raise ValueError("lease_timeout and health_ping_interval must be positive")
        if coalesce_window < 0:
            raise ValueError(f"coalesce_window must be 0 or more seconds, got {coalesce_window}")
        self._coalesce_window = coalesce_window
        self.db = db
        self.host = host
        self._requested_port = port
        self.max_message_bytes = max_message_bytes
        self._tls = (tls_cert, tls_key) if tls_cert is not None and tls_key is not None else None
        self._lease_timeout = lease_timeout
        self._health_ping_interval = health_ping_interval
        self._max_workers = max_workers
        self._port: int | None = None
        self._server: grpc.Server | None = None
        self._store: Store | None = None
        self._dispatcher: Dispatcher | None = None
        self._lock = threading.Lock()

    @property
    def port(self) -> int:
        """The port the server listens on; only known after `start()`."""
        if self._port is None:
            raise RuntimeError("the sidecar is not started; call start() first")
        return self._port

    @property
    def address(self) -> str:
        """The `host:port` that clients and workers connect to; only known after `start()`."""
        return _format_address(self.host, self.port)

    def start(self) -> Sidecar:
        """Open the database, load pending work and start serving; return self."""
        with self._lock:
            if self._server is not None:
                raise RuntimeError("the sidecar is already started")
            store = Store(self.db)
            dispatcher = Dispatcher(
                store,
                lease_timeout=self._lease_timeout,
                health_ping_interval=self._health_ping_interval,
                coalesce_window=self._coalesce_window,
            )
            engine = Engine(store, dispatcher)
            # NOTE: gRPC's own size check answers with a message that does not say how
            # to raise the limit, so it is set above ours and the handlers reject
            # requests between the two limits themselves.
            options = [
                ("grpc.max_receive_message_length", 2 * self.max_message_bytes),
                ("grpc.max_send_message_length", -1),
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.http2.min_ping_interval_without_data_ms", 5000),
                ("grpc.http2.max_ping_strikes", 0),
            ]
            server = grpc.server(
                futures.ThreadPoolExecutor(max_workers=self._max_workers, thread_name_prefix="durable-sidecar"),
                handlers=[build_handler(SidecarService(engine, dispatcher), self.max_message_bytes)],
                options=options,
            )
            target = _bind_target(self.host, self._requested_port)
            try:
                if self._tls is not None:
                    cert_path, key_path = self._tls
                    with open(cert_path, "rb") as cert_file, open(key_path, "rb") as key_file:
                        credentials = grpc.ssl_server_credentials([(key_file.read(), cert_file.read())])
                    port = server.add_secure_port(target, credentials)
                else:
                    port = server.add_insecure_port(target)
            except BaseException:
                store.close()
                raise
            if port == 0:
                store.close()
                raise OSError(f"cannot listen on {target}: the address is in use or not available")
            dispatcher.start()
            server.start()
            self._server, self._store, self._dispatcher, self._port = server, store, dispatcher, port
        logger.info(
            "Sidecar listening on %s (%s, database %s)", self.address, "TLS" if self._tls else "plaintext", self.db
        )
        return self

    def stop(self, grace: float | None = 5.0) -> None:
        """Stop serving and close the database.

        Calls still running get `grace` seconds to finish; worker streams end at
        once, and the work they hold is redelivered after the next start.
        """
        with self._lock:
            server, store, dispatcher = self._server, self._store, self._dispatcher
            if server is None or store is None or dispatcher is None:
                return
            self._server = self._store = self._dispatcher = None
        logger.info("Sidecar on %s stopping", self.address)
        dispatcher.close()
        server.stop(grace).wait()
        with dispatcher.lock:
            store.close()
        self._port = None
        logger.info("Sidecar stopped")

    def __enter__(self) -> Sidecar:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
