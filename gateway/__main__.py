"""`python -m gateway`: serve the GraphQL and REST APIs with uvicorn."""

from __future__ import annotations

import argparse
import logging
import math
import os
import resource
import signal
import socket
import sys
from types import FrameType

import uvicorn

from gateway.httplimits import bounded_protocol
from gateway.serverlog import hide_query_strings
from gateway.settings import Settings
from plumbing.settings import read_settings
from plumbing.workers import EXIT_BAD_CONFIG, WorkerPool, die_with_supervisor


class GatewayServer(uvicorn.Server):
    """uvicorn, except that a SIGTERM/SIGINT that ends in a clean shutdown exits with 0.

    Stock uvicorn re-raises the signal after shutting down, so supervisors see a death by
    signal instead of the graceful stop that happened.
    """

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        self.should_exit = True


# Files a gateway process holds besides its WebSockets: channels, spool, listener and the HTTP
# connections of the moment (an idle one holds ~30; 2026-12-07).
OTHER_FILES = 1024


def make_room_for_websockets(websockets_max: int) -> None:
    """Raise the soft open-files limit to fit WEBSOCKETS_MAX sockets and OTHER_FILES, up to the
    hard limit; say so on stderr when even that is too low. Each WebSocket is a file
    descriptor, and a process out of them drops every new connection unanswered, HTTP and
    /healthz included, and logs nothing; a soft limit of 1,024 (common: systemd, containerd)
    ran out below the default WEBSOCKETS_MAX, and the 503 past it was never reached."""
    wanted = websockets_max + OTHER_FILES
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return
    room = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (room, hard))
    except (ValueError, OSError):
        # A kernel cap below the hard limit (macOS: kern.maxfilesperproc): keep what we have.
        room = soft
    if room < wanted:
        print(
            f"gateway: the open-files limit is {room}, fewer than WEBSOCKETS_MAX"
            f" ({websockets_max}) + {OTHER_FILES} for everything else: past it new connections"
            " are dropped unanswered; raise the hard limit (ulimit -Hn) or lower WEBSOCKETS_MAX",
            file=sys.stderr,
        )


def main(argv: list[str] | None = None) -> int:
    die_with_supervisor()  # a worker: gone with its supervisor, however that ends
    # No options: an argument (a guessed --port, say) is refused rather than ignored.
    argparse.ArgumentParser(
        prog="python -m gateway",
        description=(
            "Serve the GraphQL and REST APIs. Every setting comes from the environment"
            " (GATEWAY_HOST, GATEWAY_PORT, GATEWAY_WORKERS, DB_SERVICE_ADDR, MERCH_ENV, ...);"
            ' README "Configuration" lists them all.'
        ),
    ).parse_args(argv)
    # The gateway's own lines (the spool's recovery, shipping recovered, heap freezes) as
    # db_service prints its: uvicorn configures only its own loggers, and without this the rest
    # went to Python's last resort, warnings bare and INFO lines nowhere.
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = read_settings(Settings, "gateway")
    if settings is None:
        return 2
    # Before any worker starts: they inherit it.
    make_room_for_websockets(settings.websockets_max)
    if settings.gateway_workers > 1 and settings.worker_index is None:
        if settings.gateway_port == 0:
            # Each worker would pick a port of its own.
            print("gateway: GATEWAY_WORKERS > 1 needs a fixed GATEWAY_PORT", file=sys.stderr)
            return 2
        # This process only supervises; each worker is `python -m gateway` with WORKER_INDEX.
        pool = WorkerPool(
            "gateway",
            [sys.executable, "-m", "gateway"],
            count=settings.gateway_workers,
            env=os.environ,
            grace_s=settings.shutdown_grace_s,
            address=(settings.gateway_host, settings.gateway_port),
        )
        return pool.run()
    # Only once the settings stand: importing the app creates its metrics, and prometheus-client
    # then writes to PROMETHEUS_MULTIPROC_DIR, which the settings check.
    from gateway.app import create_app

    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.gateway_host,
        port=settings.gateway_port,
        loop="auto",
        # httptools (what "auto" picks) with each response written to its socket once, and
        # each request's line and headers bounded in size and time (gateway.httplimits).
        http=bounded_protocol(settings.request_max_bytes),
        ws="websockets-sansio",
        lifespan="on",
        log_level="info",
        access_log=False,
        # The app reads neither the client's address nor the scheme: no X-Forwarded-* rewriting.
        proxy_headers=False,
        timeout_graceful_shutdown=math.ceil(settings.shutdown_grace_s),
        # A WebSocket message is a request too: the same bound as an HTTP body.
        ws_max_size=settings.request_max_bytes,
    )
    # After uvicorn.Config, which configures uvicorn's loggers.
    hide_query_strings()
    server = GatewayServer(config)
    # A worker listens on a socket of its own in the port's SO_REUSEPORT group and the kernel
    # hashes each new connection to one listener (README "Scaling out" has the measurements).
    try:
        server.run(sockets=None if settings.worker_index is None else [_reuseport_socket(settings)])
    except SystemExit:
        # uvicorn's exit on a failed startup: a refusal (every spool slot held) is one no
        # restart changes, so a supervisor must stop rather than restart this worker for ever.
        if getattr(app.state, "refused", False):
            return EXIT_BAD_CONFIG
        raise
    return 0 if server.started else 1


def _reuseport_socket(settings: Settings) -> socket.socket:
    family = socket.AF_INET6 if ":" in settings.gateway_host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((settings.gateway_host, settings.gateway_port))
    return sock


if __name__ == "__main__":
    sys.exit(main())
