"""Per-RPC bookkeeping: request id, caller and outcome, recorded once per DBService call and
request id (a coalesced call made for several requests carries each one's id).

Unless answers wait for the disk (LOG_DURABILITY=sync with a spool in use), a call's records are
built once its answer is on its way: the gateway's coalesced product reads carry up to 64 request
ids, and building that many records before answering held every one of those requests back. In
sync mode they are built, and on disk, before the answer leaves.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import grpc

from db_service.calls import CallInfo, Context, current_call
from db_service.metrics import RPC_SECONDS, RPCS

_SERVICE_PREFIX = "/merch.v1.DBService/"
REQUEST_ID_KEY = "x-request-id"
# A call made for several requests (the gateway coalesces product reads) carries their ids,
# joined by commas in one `x-request-id` entry, and is recorded once per request; beyond this
# many, the rest are ignored.
MAX_REQUEST_IDS = 100

if TYPE_CHECKING:
    Handler = grpc.RpcMethodHandler[Any, Any]


class CallRecorder(Protocol):
    def record_each(
        self,
        request_ids: Sequence[str],
        *,
        kind: str,
        operation: str,
        user: str,
        outcome: str,
        duration_ms: float,
        message: str = "",
    ) -> list[str]: ...


class CallRecordInterceptor(grpc.aio.ServerInterceptor):
    """Records every DBService RPC (not health or reflection) with the caller's request id.

    `durable`, when given (sync mode in effect), is awaited before the answer leaves: the
    call's record is on disk first. Without it, the record is made in the event loop's next
    turn, after gRPC has serialized the answer and started sending it.
    """

    def __init__(
        self, recorder: CallRecorder, durable: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        self._recorder = recorder
        self._durable = durable

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or handler.unary_unary is None or not method.startswith(_SERVICE_PREFIX):
            return handler
        method_name = method.removeprefix(_SERVICE_PREFIX)
        operation = "DBService/" + method_name
        request_ids = request_ids_of(handler_call_details.invocation_metadata)
        # The stubs type handler behaviours as synchronous; ours are coroutines.
        inner: Callable[[Any, Context], Awaitable[Any]] = handler.unary_unary  # type: ignore[assignment]
        recorder = self._recorder
        durable = self._durable

        async def recorded(request: Any, context: Context) -> Any:
            call = CallInfo(request_id=request_ids[0])
            token = current_call.set(call)
            started = time.perf_counter()
            try:
                response = await inner(request, context)
            except asyncio.CancelledError:
                call.outcome = "CANCELLED" if call.outcome == "ok" else call.outcome
                finish(call, started, token)
                raise
            except BaseException:
                # An abort (a domain error) is an answer too: recorded, then durable if asked.
                call.outcome = "CANCELLED" if call.outcome == "ok" else call.outcome
                finish(call, started, token)
                if durable is not None:
                    await durable()
                raise
            finish(call, started, token)
            if durable is not None:
                await durable()
            return response

        def finish(
            call: CallInfo, started: float, token: contextvars.Token[CallInfo | None]
        ) -> None:
            current_call.reset(token)
            elapsed = time.perf_counter() - started
            RPCS.labels(method_name, call.outcome).inc()
            RPC_SECONDS.labels(method_name).observe(elapsed)
            record = functools.partial(
                recorder.record_each,
                request_ids,
                kind="rpc",
                operation=operation,
                user=call.user,
                outcome=call.outcome,
                duration_ms=elapsed * 1000,
            )
            if durable is None:
                asyncio.get_running_loop().call_soon(record)
            else:
                record()

        return grpc.unary_unary_rpc_method_handler(
            recorded,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def request_ids_of(metadata: Any) -> list[str]:
    """The well-formed request ids of the call, in order and each once; a new one if none.

    An `x-request-id` entry may carry several ids separated by commas (a coalesced call), as
    may several entries.
    """
    ids: dict[str, None] = {}
    for key, raw in metadata or ():
        if key != REQUEST_ID_KEY:
            continue
        value = raw.decode() if isinstance(raw, bytes) else str(raw)
        for part in value.split(","):
            request_id = part.strip(" \t")  # HTTP's list form allows spaces after a comma
            if (
                len(ids) < MAX_REQUEST_IDS
                and 0 < len(request_id) <= 128
                and request_id.isprintable()
            ):
                ids[request_id] = None
    return list(ids) or [uuid.uuid4().hex]
