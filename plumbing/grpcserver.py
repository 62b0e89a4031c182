"""What each gRPC service's lifecycle shares: its health status, and running until a signal."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Any, Protocol

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import REGISTRY, CollectorRegistry, start_http_server


class Service(Protocol):
    """A service's long-lived resources: `start` opens them and returns the bound port."""

    async def start(self) -> int: ...

    async def stop(self) -> None: ...


class HealthStatus:
    """The standard gRPC health servicer, reporting one status for "" and the service's name."""

    def __init__(self, service_name: str) -> None:
        self.servicer = health.aio.HealthServicer()
        self.service_name = service_name
        self._names = ("", service_name)

    async def set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in self._names:
            await self.servicer.set(name, status)


class CannotListen(RuntimeError):
    """An address the service was told to listen on could not be bound; says which variable."""

    def __init__(self, variable: str, address: str, reason: str) -> None:
        super().__init__(f"cannot listen on {address} ({variable}): {reason}")


async def start_server(
    server: grpc.aio.Server, address: str, status: HealthStatus, *, variable: str
) -> int:
    """Add health and reflection to `server`, bind `address` (the value of `variable`) and
    start; the bound port."""
    health_pb2_grpc.add_HealthServicer_to_server(status.servicer, server)
    reflection.enable_server_reflection(
        (status.service_name, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    try:
        port = server.add_insecure_port(address)
    except RuntimeError:
        port = 0
    if port == 0:
        raise CannotListen(
            variable, address, "the port is in use, or the host is not an address of this machine"
        )
    await server.start()
    return port


def start_metrics_server(
    port: int, *, variable: str, registry: CollectorRegistry = REGISTRY
) -> tuple[Any, Any]:
    """prometheus-client's HTTP server on `port` (the value of `variable`): (server, thread)."""
    try:
        return start_http_server(port, registry=registry)
    except OSError as exc:
        raise CannotListen(variable, f"port {port}", exc.strerror or str(exc)) from None


async def serve_until_signalled(service: Service) -> None:
    """Start `service`, run it until SIGTERM or SIGINT, then stop it.

    A signal during start (db_service may still be waiting for PostgreSQL) cancels the start; a
    start that fails raises its error, after the stop has closed whatever it had opened.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    start = asyncio.create_task(service.start())
    stopped = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({start, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if not start.done():
            start.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await start
        else:
            start.result()  # raise start-up errors (bad settings, failed migration)
            await stopped
    finally:
        stopped.cancel()
        await service.stop()
