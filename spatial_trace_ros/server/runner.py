"""Run one trace server process: bind, load the model once, serve with uvicorn, drain on a signal.

Order matters for operators: the port is bound first (a busy port fails in a second, not after a
minute of model loading) but only listened on once the model is loaded, so clients see "connection
refused" until the server can answer, then 503 "warming up" until ``/readyz`` is 200.
On SIGTERM/SIGINT the server stops accepting connections, refuses new requests on open ones with 503,
lets the requests in flight finish (up to ``--request-timeout-s``) and exits.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

import uvicorn

from spatial_trace_ros.errors import ConfigError
from spatial_trace_ros.server.app import create_app
from spatial_trace_ros.server.auth import BearerAuth, load_token
from spatial_trace_ros.server.backends.base import load_backend
from spatial_trace_ros.server.metrics import ServerMetrics
from spatial_trace_ros.server.service import TraceService
from spatial_trace_ros.server.settings import ServerSettings

log = logging.getLogger("spatial_trace_ros.server")


class _DrainingServer(uvicorn.Server):
    """uvicorn's server, telling the service to refuse new work the moment a stop signal arrives."""

    def __init__(self, config: uvicorn.Config, service: TraceService) -> None:
        super().__init__(config)
        self.service = service

    def handle_exit(self, sig: int, frame: Any) -> None:
        self.service.begin_drain()
        super().handle_exit(sig, frame)


def bind_socket(host: str, port: int) -> socket.socket:
    """A bound (not yet listening) TCP socket; a busy port or unknown address is a ConfigError."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as err:
        raise ConfigError(f"--host {host!r} is not an address of this machine: {err}") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as err:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port} ({err.strerror}); pick another --port or --host") from None
    sock.set_inheritable(True)
    return sock


def serve(settings: ServerSettings, log_level: str = "info", access_log: bool = True) -> int:
    """Serve until a stop signal; 0 after a clean drain, 1 if the model failed its warm-up."""
    token = load_token(settings.token_file, settings.allow_no_auth)
    sock = bind_socket(settings.host, settings.port)
    try:
        backend = load_backend(settings)
        log.info("loaded %s as %s v%s: %s", settings.model_path or settings.upstream_url, backend.identity.name,
                 backend.identity.version,
                 backend.describe())
        service = TraceService(backend, settings, ServerMetrics())
        app = create_app(service, BearerAuth(token), settings.max_body_bytes, settings.request_timeout_s)
        config = uvicorn.Config(
            app, log_config=None, log_level=log_level, access_log=access_log, server_header=False,
            timeout_graceful_shutdown=int(settings.request_timeout_s) + 1,
            limit_concurrency=settings.max_queue + 4 * service.batcher.max_batch_size + 64,
        )
        server = _DrainingServer(config, service)
        exit_code = {"value": 0}

        def on_fatal(reason: str) -> None:
            exit_code["value"] = 1
            server.should_exit = True

        service.on_fatal = on_fatal
        log.info("serving on http://%s:%d (auth %s, batches up to %d, queue %d)", settings.host, settings.port,
                 "on" if token else "OFF", service.batcher.max_batch_size, settings.max_queue)
        server.run(sockets=[sock])
        return exit_code["value"]
    finally:
        sock.close()
