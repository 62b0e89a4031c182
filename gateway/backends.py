"""Long-lived gRPC channels to db_service and logging_service, and the one way to call them."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from typing import Any, TypeAlias, TypeVar

import grpc
from google.protobuf import descriptor_pb2
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import Counter, Histogram

import protos.db_service_pb2 as pb
import protos.db_service_pb2_grpc as db_service_pb2_grpc
import protos.logging_service_pb2_grpc as logging_service_pb2_grpc
from gateway.coalesce import ProductReads
from gateway.errors import GRPC_ERRORS, ApiCode, from_grpc_error
from plumbing.grpcchannel import DIRECT

log = logging.getLogger(__name__)

GRPC_CALLS = Counter(
    "gateway_grpc_calls_total", "gRPC calls made by the gateway", ["method", "code"]
)
GRPC_LATENCY = Histogram(
    "gateway_grpc_call_seconds", "gRPC call latency seen by the gateway", ["method"]
)

# The statuses of a call no backend ran to its end: a backend out of reach, or one that stopped.
RETRYABLE = {"UNAVAILABLE", "CANCELLED"}
# Reads retry on those, bounded; writes are never retried by the channel (a write is
# only safe to repeat with an idempotency key, and the caller decides that: DBClient.call).
# Which RPCs are reads is said once, in the proto (`idempotency_level = NO_SIDE_EFFECTS`), so a
# new read gets its retries without a list to keep here. Retry throttling stops retries
# altogether while most calls fail, so a backend that is down gets no more than the original
# load.
READ_ATTEMPTS = 3
DB_SERVICE = pb.DESCRIPTOR.services_by_name["DBService"]
READS = [
    method.name
    for method in DB_SERVICE.methods
    if method.GetOptions().idempotency_level == descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS
]
# Each RPC takes a request type of its own, so a request names its RPC (for metrics and logs).
_RPC_BY_REQUEST = {method.input_type.full_name: method.name for method in DB_SERVICE.methods}
assert len(_RPC_BY_REQUEST) == len(DB_SERVICE.methods), "two RPCs share a request type"
SERVICE_CONFIG = json.dumps(
    {
        # Every address the name resolves to gets calls in turn: with
        # DB_SERVICE_ADDR=dns:///db-service:50051 that is every db_service replica (one address
        # behaves as before).
        "loadBalancingConfig": [{"round_robin": {}}],
        "methodConfig": [
            {
                "name": [{"service": DB_SERVICE.full_name, "method": m} for m in READS],
                "retryPolicy": {
                    "maxAttempts": READ_ATTEMPTS,
                    "initialBackoff": "0.05s",
                    "maxBackoff": "0.5s",
                    "backoffMultiplier": 2,
                    # CANCELLED: a stopping backend's answer to the calls it had not started
                    # (gateway.errors); another worker or replica may answer the retry.
                    "retryableStatusCodes": sorted(RETRYABLE),
                },
            }
        ],
        "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1},
    }
)
# Writes that carry an idempotency key: attempts, and the pause before the first retry.
KEYED_WRITE_ATTEMPTS = 3
_KEYED_WRITE_BACKOFF_S = 0.05
CHANNEL_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.enable_retries", 1),
    ("grpc.service_config", SERVICE_CONFIG),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.max_receive_message_length", 4 * 1024 * 1024),
    DIRECT,
]


Request = TypeVar("Request", bound=Message)
Reply = TypeVar("Reply", bound=Message)
# One RPC of the typed stub, e.g. `DBClient.stub.GetUser`: it fixes the request and reply types.
Rpc: TypeAlias = grpc.aio.UnaryUnaryMultiCallable[Request, Reply]


class DBClient:
    """Calls DBService with a deadline, the caller's token and the request id; maps failures.

        user = await db.call(db.stub.GetUser, pb.GetUserRequest(sid=sid), ...)

    `stub` is typed by protos/db_service_pb2_grpc.pyi, so mypy checks that the RPC exists, that
    the request is its request type, and types the reply. Call RPCs through `call`, never the
    stub directly: `call` adds the deadline, the metadata, the retries and the error mapping.
    """

    def __init__(self, channel: grpc.aio.Channel, timeout_s: float) -> None:
        self.stub = db_service_pb2_grpc.DBServiceStub(channel)
        self._timeout_s = timeout_s
        self.product_reads = ProductReads(self)

    @property
    def timeout_s(self) -> float:
        """Each call's deadline, from when it is made (or, for a coalesced read, asked)."""
        return self._timeout_s

    async def call(
        self,
        rpc: Rpc[Request, Reply],
        request: Request,
        *,
        authorization: str | None,
        request_id: str,
        idempotent_write: bool = False,
        deadline: float | None = None,
    ) -> Reply:
        """One call, within one deadline of `timeout_s` however many attempts it takes (or
        by `deadline`, a time.monotonic(), when the caller started counting earlier).

        Reads are retried by the channel (SERVICE_CONFIG). A write is retried here, on
        UNAVAILABLE or CANCELLED only (RETRYABLE), when `idempotent_write` says it carries an
        idempotency key: repeating it cannot place a second order. Any other write is attempted
        exactly once.
        """
        metadata: list[tuple[str, str]] = [("x-request-id", request_id)]
        if authorization:
            metadata.append(("authorization", authorization))
        return await self._call(rpc, request, metadata, idempotent_write, deadline)

    async def call_for_many(
        self,
        rpc: Rpc[Request, Reply],
        request: Request,
        *,
        request_ids: list[str],
        deadline: float | None = None,
    ) -> Reply:
        """One anonymous read on behalf of several requests: their ids travel in one
        `x-request-id` entry, joined by commas (HTTP's form of a repeated field; the gateway's
        request ids never contain one), and db_service records the call once per request.

        One entry, not one per id: each metadata entry costs gRPC on both sides, and 15 of them
        cost about 100 µs of CPU per call (client and server together) where one costs none
        to speak of."""
        metadata = [("x-request-id", ",".join(request_ids))]
        return await self._call(rpc, request, metadata, False, deadline)

    async def _call(
        self,
        rpc: Rpc[Request, Reply],
        request: Request,
        metadata: list[tuple[str, str]],
        idempotent_write: bool,
        deadline: float | None,
    ) -> Reply:
        method = _RPC_BY_REQUEST[request.DESCRIPTOR.full_name]
        if deadline is None:
            deadline = time.monotonic() + self._timeout_s
        attempts = KEYED_WRITE_ATTEMPTS if idempotent_write else 1
        backoff = _KEYED_WRITE_BACKOFF_S
        for attempt in range(1, attempts + 1):
            try:
                return await self._attempt(method, rpc, request, metadata, deadline)
            except grpc.aio.AioRpcError as exc:
                retry = exc.code().name in RETRYABLE and attempt < attempts
                if not retry or deadline - time.monotonic() <= backoff:
                    error = from_grpc_error(exc)
                    if error.code == ApiCode.INTERNAL_SERVER_ERROR:
                        # The client learns nothing of it; the log says what it was.
                        log.error("%s failed: %s %s", method, exc.code().name, exc.details())
                    raise error from None
            except GRPC_ERRORS as exc:
                # The library refused the call before any server saw it; say so in the log,
                # since the client only learns "internal error" (or "unavailable").
                log.error("gRPC client failure in %s: %s", method, type(exc).__name__)
                raise from_grpc_error(exc) from None
            await asyncio.sleep(backoff)
            backoff *= 2
        raise AssertionError("unreachable: the last attempt returns or raises")

    @staticmethod
    async def _attempt(
        method: str,
        rpc: Rpc[Request, Reply],
        request: Request,
        metadata: list[tuple[str, str]],
        deadline: float,
    ) -> Reply:
        started = time.perf_counter()
        code = "OK"
        try:
            return await rpc(request, timeout=deadline - time.monotonic(), metadata=metadata)
        except grpc.aio.AioRpcError as exc:
            code = exc.code().name
            raise
        except GRPC_ERRORS:
            code = "CLIENT_ERROR"  # no status: the library failed the call itself
            raise
        finally:
            GRPC_CALLS.labels(method, code).inc()
            GRPC_LATENCY.labels(method).observe(time.perf_counter() - started)


class Backends:
    """The gateway's channels: opened once in the app's lifespan, closed on shutdown."""

    def __init__(self, *, db_addr: str, logging_addr: str, timeout_s: float) -> None:
        self.db_channel = grpc.aio.insecure_channel(db_addr, options=CHANNEL_OPTIONS)
        self.logging_channel = grpc.aio.insecure_channel(logging_addr, options=CHANNEL_OPTIONS[2:])
        self.db = DBClient(self.db_channel, timeout_s)
        # Streams only (TailLogs); records are shipped by the LogShipper on its own channel.
        self.logging = logging_service_pb2_grpc.LoggingServiceStub(self.logging_channel)

    async def health(self, timeout_s: float) -> Mapping[str, str]:
        """Each dependency's health-check answer: SERVING, NOT_SERVING or UNREACHABLE."""
        channels = {"db_service": self.db_channel, "logging_service": self.logging_channel}
        names = list(channels)
        answers = await asyncio.gather(
            *(_check(channels[n], timeout_s) for n in names), return_exceptions=False
        )
        return dict(zip(names, answers, strict=True))

    async def close(self) -> None:
        await asyncio.gather(
            self.db_channel.close(grace=1.0), self.logging_channel.close(grace=1.0)
        )


async def _check(channel: grpc.aio.Channel, timeout_s: float) -> str:
    stub = health_pb2_grpc.HealthStub(channel)
    try:
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout_s)
    except GRPC_ERRORS:
        return "UNREACHABLE"
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))
