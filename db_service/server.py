"""db_service lifecycle: pool, migrations, gRPC server, health, reflection, graceful stop."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import asyncpg
import grpc
from prometheus_client import REGISTRY
from prometheus_client.registry import Collector

from db_service import metrics
from db_service.dbhealth import DatabaseMonitor
from db_service.errors import DomainError
from db_service.interceptors import CallRecordInterceptor
from db_service.migrate import apply_migrations
from db_service.outbox import Outbox
from db_service.passwords import Passwords, argon2id
from db_service.relay import OutboxRelay
from db_service.repositories.orders import OrderRepository
from db_service.repositories.outbox import OutboxRepository
from db_service.repositories.products import ProductRepository
from db_service.repositories.users import UserRepository
from db_service.servicers import DBServiceServicer, Services
from db_service.services.auth import Authenticator
from db_service.services.orders import OrderRatePolicy, OrderService
from db_service.services.products import ProductService
from db_service.services.users import LoginPolicy, UserService
from db_service.settings import Settings
from db_service.sweeper import WindowSweeper
from logging_service.client import LogChannel, LogShipper
from plumbing.grpcserver import (
    HealthStatus,
    serve_until_signalled,
    start_metrics_server,
    start_server,
)
from plumbing.workermetrics import CollectorMirror
from plumbing.workers import STOP_MARGIN_S
from protos import db_service_pb2, db_service_pb2_grpc
from protos.tokens import TokenCodec

log = logging.getLogger("db_service")


class StartupRefused(Exception):
    """db_service must not start with this configuration; the message says why, in one line."""


# What PostgreSQL (or asyncpg reading the URL) answers to a DATABASE_URL that cannot work.
_REFUSED_DATABASE_URL = (
    asyncpg.ClientConfigurationError,
    asyncpg.InvalidCatalogNameError,
    asyncpg.InvalidAuthorizationSpecificationError,
    asyncpg.InvalidPasswordError,
)


# The pool's bounds are checked with the settings: a ValueError from connecting is the URL's.
UNREADABLE_DATABASE_URL = (
    "DATABASE_URL cannot be read as a PostgreSQL URL; percent-encode ':', '@', '/' and '%' in"
    " its user name and password"
)


class PooledConnection(asyncpg.Connection):
    """A pool connection released without asyncpg's reset query (advisory unlock, CLOSE ALL,
    UNLISTEN, RESET ALL): a second round trip after every pooled query, while db_service keeps
    no session state (no SET, LISTEN, cursors or session-level advisory locks). asyncpg still
    rolls back a transaction left open on release."""

    def get_reset_query(self) -> str:
        return ""


# The variable behind each input of the configured admin, for its refusal to name (the admin's
# email is made from its username). A refusal about none of them names all three.
ADMIN_VARIABLES = {
    "sid": "ADMIN_SID",
    "username": "ADMIN_USERNAME",
    "email": "ADMIN_USERNAME",
    "password": "ADMIN_PASSWORD",
}
ALL_ADMIN_VARIABLES = "ADMIN_SID / ADMIN_USERNAME / ADMIN_PASSWORD"

# The relay's wait for logging_service's acknowledgement of a batch; its transaction, which
# holds the relay lock meanwhile, is ended by PostgreSQL after three times that idle.
RELAY_CALL_TIMEOUT_S = 5.0

SERVICE_NAME = db_service_pb2.DESCRIPTOR.services_by_name["DBService"].full_name
SERVER_OPTIONS = [
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.max_receive_message_length", 1 * 1024 * 1024),
    ("grpc.max_concurrent_streams", 1000),
]


def server_options(worker_index: int | None) -> list[tuple[str, int]]:
    """SERVER_OPTIONS, and SO_REUSEPORT for the workers of one db_service (DB_SERVICE_WORKERS),
    which each bind the same port while the kernel spreads connections over them. Nothing else
    shares a port: a second db_service started on a taken one must fail to start, not silently
    take a share of the first one's calls."""
    return [*SERVER_OPTIONS, ("grpc.so_reuseport", 0 if worker_index is None else 1)]


class DBServiceApp:
    """Owns every long-lived resource of db_service; `start` opens them, `stop` closes them."""

    def __init__(self, settings: Settings) -> None:
        self._metrics_server: Any = None
        self._pool_metrics: Collector | None = None
        self.settings = settings
        self.pool: asyncpg.Pool | None = None
        self.health = HealthStatus(SERVICE_NAME)
        self.shipper = LogShipper.from_settings(settings, service="db_service")
        self.outbox = Outbox(max_rows=settings.log_outbox_max_rows, enabled=settings.log_shipping)
        self._relay: OutboxRelay | None = None
        self._server: grpc.aio.Server | None = None
        self._monitor: DatabaseMonitor | None = None
        self._mirror: CollectorMirror | None = None
        self._sweeper: WindowSweeper | None = None

    async def start(self) -> int:
        """Connect, migrate, serve; returns the bound port (the listen port may be 0)."""
        s = self.settings
        await self.health.set_serving(False)
        await self.shipper.start()
        self.pool = await self._connect()
        if s.prometheus_multiproc_dir is not None:
            # A worker: its supervisor serves DB_METRICS_PORT, summed over the workers' files.
            self._mirror = CollectorMirror(
                metrics.PoolCollector(self.pool, self.shipper, self.outbox),
                largest=metrics.LARGEST_OVER_WORKERS,
            )
            self._mirror.start()
        elif s.db_metrics_port:
            self._pool_metrics = metrics.register_pool(self.pool, self.shipper, self.outbox)
            self._metrics_server, _ = start_metrics_server(
                s.db_metrics_port, variable="DB_METRICS_PORT"
            )
        await apply_migrations(self.pool)
        if s.log_shipping:
            self._relay = OutboxRelay(
                self.outbox,
                OutboxRepository(self.pool),
                self.pool,
                LogChannel(s.logging_service_addr, call_timeout_s=RELAY_CALL_TIMEOUT_S),
                batch_max=s.log_batch_max,
                hold_max_s=3 * RELAY_CALL_TIMEOUT_S,
                idle_s=s.log_flush_interval_s,
            )
            self._relay.start()
        codec = TokenCodec(s.jwt_secret.get_secret_value(), s.jwt_issuer, s.jwt_ttl_s)
        user_repo = UserRepository(self.pool, self.outbox)
        users = UserService(
            user_repo,
            Passwords(
                s.hash_concurrency,
                hasher=argon2id(
                    time_cost=s.password_hash_time_cost, memory_kib=s.password_hash_memory_kib
                ),
            ),
            codec,
            LoginPolicy(
                max_attempts=s.login_max_failures,
                window_s=s.login_window_s,
                client_max_attempts=s.client_auth_limit,
                client_window_s=s.client_auth_window_s,
            ),
        )
        if s.admin_sid and s.admin_username and s.admin_password:
            try:
                await users.ensure_admin(
                    sid=s.admin_sid,
                    username=s.admin_username,
                    password=s.admin_password.get_secret_value(),
                )
            except DomainError as exc:
                # A restart cannot fix a configuration, so no traceback: one line says why.
                variable = ADMIN_VARIABLES.get(exc.field or "", ALL_ADMIN_VARIABLES)
                raise StartupRefused(f"{variable}: {exc.message}") from None
        products = ProductRepository(self.pool)
        services = Services(
            auth=Authenticator(codec, user_repo),
            users=users,
            products=ProductService(products),
            orders=OrderService(
                OrderRepository(self.pool, self.outbox),
                products,
                user_repo,
                OrderRatePolicy(max_orders=s.order_rate_limit, window_s=s.order_rate_window_s),
            ),
        )

        server = grpc.aio.server(
            interceptors=[
                CallRecordInterceptor(
                    self.shipper, self.shipper.durable if self.shipper.sync else None
                )
            ],
            options=server_options(s.worker_index),
        )
        db_service_pb2_grpc.add_DBServiceServicer_to_server(DBServiceServicer(services), server)
        port = await start_server(
            server, s.db_service_listen, self.health, variable="DB_SERVICE_LISTEN"
        )
        self._server = server
        await self.health.set_serving(True)
        # From now on health follows PostgreSQL: NOT_SERVING while it is down, SERVING again after.
        self._monitor = DatabaseMonitor(
            s.database_url, interval_s=s.db_health_interval_s, on_change=self.health.set_serving
        )
        self._monitor.start()
        self._sweeper = WindowSweeper(
            self.pool,
            {
                "login_attempts": s.login_window_s,
                "client_auth_windows": s.client_auth_window_s,
                "order_rate_windows": s.order_rate_window_s,
            },
            interval_s=s.window_sweep_interval_s,
        )
        self._sweeper.start()
        log.info("db_service listening on port %d", port)
        return port

    async def stop(self) -> None:
        """Refuse new work, drain in-flight RPCs for the grace period, then close everything;
        all within the grace period and STOP_MARGIN_S, what a supervisor waits before SIGKILL
        (the log shipper gets the grace period, as the gateway's does, or what is left of
        that, at least half a second)."""
        deadline = time.monotonic() + self.settings.shutdown_grace_s + STOP_MARGIN_S
        if self._monitor is not None:
            await self._monitor.stop()  # first, so it cannot report SERVING again
        if self._sweeper is not None:
            await self._sweeper.stop()
        await self.health.set_serving(False)
        if self._server is not None:
            await self._server.stop(self.settings.shutdown_grace_s)
        if self._relay is not None:
            await self._relay.stop()  # rows not relayed yet wait in PostgreSQL for the next start
        if self.pool is not None:
            try:
                await asyncio.wait_for(self.pool.close(), timeout=5)
            except TimeoutError:
                self.pool.terminate()  # PostgreSQL is not answering: do not wait on it

        if self._mirror is not None:
            await self._mirror.stop()
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
        if self._pool_metrics is not None:
            REGISTRY.unregister(self._pool_metrics)
        left = max(deadline - time.monotonic() - 0.5, 0.5)
        await self.shipper.stop(timeout_s=min(self.settings.shutdown_grace_s, left))
        log.info("db_service stopped")

    async def _connect(self) -> asyncpg.Pool:
        """Create the pool, retrying while PostgreSQL is not reachable yet (for example at boot)."""
        s = self.settings
        delay = 0.2
        while True:
            try:
                return await asyncpg.create_pool(
                    s.database_url,
                    min_size=s.db_pool_min,
                    max_size=s.db_pool_max,
                    timeout=s.db_connect_timeout_s,
                    command_timeout=s.db_command_timeout_s,
                    connection_class=PooledConnection,
                )
            except (OSError, asyncpg.CannotConnectNowError, TimeoutError) as exc:
                log.warning("PostgreSQL not reachable (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            except _REFUSED_DATABASE_URL as exc:
                # PostgreSQL answered, and no retry changes its answer; the message names the
                # database or role, never the URL's password.
                raise StartupRefused(f"DATABASE_URL: {exc}") from None
            except ValueError:
                # asyncpg could not read the URL; its words would quote part of it.
                raise StartupRefused(UNREADABLE_DATABASE_URL) from None


async def serve(settings: Settings) -> None:
    """Run db_service until SIGTERM or SIGINT."""
    await serve_until_signalled(DBServiceApp(settings))
