"""logging_service lifecycle: gRPC server, health, reflection, Kafka producer, graceful stop."""

from __future__ import annotations

import logging
from typing import Any

import grpc

from logging_service.kafka import LogProducer
from logging_service.servicer import LoggingServiceServicer
from logging_service.settings import Settings
from plumbing.grpcserver import (
    HealthStatus,
    serve_until_signalled,
    start_metrics_server,
    start_server,
)
from protos import logging_service_pb2, logging_service_pb2_grpc

log = logging.getLogger("logging_service")

SERVICE_NAME = logging_service_pb2.DESCRIPTOR.services_by_name["LoggingService"].full_name
SERVER_OPTIONS = [
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    # gRPC's default, per message: LogShipper keeps a LogBatch message near 1 MiB at most.
    ("grpc.max_receive_message_length", 4 * 1024 * 1024),
    ("grpc.max_concurrent_streams", 1000),
    # One process per address: a second one started on a taken port must fail to start, not
    # silently take a share of the first one's connections (gRPC's default is SO_REUSEPORT).
    ("grpc.so_reuseport", 0),
]


class LoggingServiceApp:
    """Owns every long-lived resource of logging_service; `start` opens them, `stop` closes them.

    Health ("" and merch.v1.LoggingService) is NOT_SERVING until Kafka is ready, follows the
    producer's connection afterwards, and is NOT_SERVING for good once `stop` begins.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.health = HealthStatus(SERVICE_NAME)
        self.producer = LogProducer(settings, on_ready=self.health.set_serving)
        self.servicer = LoggingServiceServicer(self.producer, settings)
        self._server: grpc.aio.Server | None = None
        self._metrics_server: Any = None

    async def start(self) -> int:
        """Serve, connect to Kafka in the background, and return the bound port (port 0 allowed)."""
        s = self.settings
        await self.health.set_serving(False)
        server = grpc.aio.server(options=SERVER_OPTIONS)
        logging_service_pb2_grpc.add_LoggingServiceServicer_to_server(self.servicer, server)
        port = await start_server(
            server, s.logging_service_listen, self.health, variable="LOGGING_SERVICE_LISTEN"
        )
        self._server = server
        if s.logging_metrics_port:
            self._metrics_server, _ = start_metrics_server(
                s.logging_metrics_port, variable="LOGGING_METRICS_PORT"
            )
        await self.producer.start()
        log.info("logging_service listening on port %d", port)
        return port

    async def stop(self, grace: float | None = None) -> None:
        """NOT_SERVING, end tails, drain in-flight calls for `grace` seconds, flush Kafka."""
        await self.health.servicer.enter_graceful_shutdown()
        self.servicer.close()
        if self._server is not None:
            await self._server.stop(self.settings.shutdown_grace_s if grace is None else grace)
            self._server = None
        await self.producer.stop()
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
            self._metrics_server = None
        log.info("logging_service stopped")


async def serve(settings: Settings) -> None:
    """Run logging_service until SIGTERM or SIGINT, then stop gracefully."""
    log.info("grace period on stop: %.1f s", settings.shutdown_grace_s)
    await serve_until_signalled(LoggingServiceApp(settings))
