"""Everything the gateway opens at start and closes at shutdown, in one object."""

from __future__ import annotations

import time

from starlette.requests import HTTPConnection

from gateway import metrics
from gateway.backends import Backends
from gateway.clientaddr import client_address
from gateway.identity import TokenChecker
from gateway.middleware import new_request_id
from gateway.scope import RequestScope
from gateway.settings import Settings
from logging_service.client import LogShipper
from plumbing.workermetrics import CollectorMirror
from protos.tokens import TokenCodec

SERVICE = "gateway"


class Runtime:
    """The gateway's long-lived resources: backend channels and the log shipper."""

    backends: Backends

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.tokens = TokenChecker(
            # The gateway never issues tokens; the TTL is irrelevant to verification.
            TokenCodec(settings.jwt_secret.get_secret_value(), settings.jwt_issuer, ttl_s=3600)
        )
        self.shipper = LogShipper.from_settings(settings, service=SERVICE)
        self._mirror: CollectorMirror | None = None

    async def start(self) -> None:
        """Open the channels on the serving event loop (grpc.aio objects belong to one loop)."""
        self.backends = Backends(
            db_addr=self.settings.db_service_addr,
            logging_addr=self.settings.logging_service_addr,
            timeout_s=self.settings.grpc_timeout_s,
        )
        await self.shipper.start()
        self._collector = metrics.register_shipper(self.shipper)
        if self.settings.prometheus_multiproc_dir is not None:
            self._mirror = CollectorMirror(self._collector, largest=metrics.LARGEST_OVER_WORKERS)
            self._mirror.start()

    def sample_metrics(self) -> None:
        """Bring this worker's scrape-time metrics up to date in the shared metrics files."""
        if self._mirror is not None:
            self._mirror.sample()

    async def stop(self) -> None:
        if self._mirror is not None:
            await self._mirror.stop()
        metrics.unregister(self._collector)
        # Flushing the log is part of the graceful stop, bounded like the rest of it.
        await self.shipper.stop(timeout_s=self.settings.shutdown_grace_s)
        await self.backends.close()

    def scope_for(self, conn: HTTPConnection) -> RequestScope:
        request_id = getattr(conn.state, "request_id", None) or new_request_id()
        return RequestScope(
            db=self.backends.db,
            credentials=self.tokens.check(_one_authorization(conn)),
            request_id=request_id,
            client=client_address(conn.scope, self.settings.trusted_proxies),
        )

    def record(
        self,
        *,
        kind: str,
        operation: str,
        user: str,
        outcome: str,
        started: float,
        request_id: str,
        message: str = "",
    ) -> None:
        elapsed = time.perf_counter() - started
        count, latency = metrics.request_children(kind, operation, outcome)
        count.inc()
        latency.observe(elapsed)
        self.shipper.record(
            kind=kind,
            operation=operation,
            user=user,
            outcome=outcome,
            duration_ms=elapsed * 1000,
            request_id=request_id,
            message=message,
        )


def _one_authorization(conn: HTTPConnection) -> str | None:
    """The request's Authorization header; None for none, or for several: a proxy that reads
    the last one would see another caller than one reading the first, so neither counts."""
    values = conn.headers.getlist("authorization")
    return values[0] if len(values) == 1 else None
