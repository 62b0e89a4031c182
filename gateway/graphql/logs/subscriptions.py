"""`subscription { logs }`: admins watch every recorded call live, backed by TailLogs.

The stream lasts while its token does: it ends with UNAUTHENTICATED when the token expires, and
within SESSION_RECHECK_S of db_service revoking it (deactivation, a new password); with FORBIDDEN
within SESSION_RECHECK_S of its admin becoming a customer. Either goes out as the protocol's
`error` message (gateway.graphql.websocket), as a new subscription's refusal would.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

import grpc
import strawberry
from strawberry.permission import BasePermission

import protos.db_service_pb2 as db_service_pb2
from gateway.errors import ApiCode, ApiError, from_rpc_error
from gateway.graphql.context import Info
from gateway.graphql.errors import outcome_of
from gateway.graphql.logs.types import LogRecord
from gateway.operations import users
from gateway.scope import RequestScope
from gateway.session import session_end
from plumbing.recent import RecentKeys
from protos import logging_service_pb2 as pb

if TYPE_CHECKING:
    from gateway.runtime import Runtime


async def confirm_admin(scope: RequestScope) -> None:
    """The token's role claim let the caller this far; db_service confirms the token still
    stands and its bearer is still an admin."""
    me = await users.me(scope)
    if me.role != db_service_pb2.ROLE_ADMIN:
        raise ApiError.forbidden()


class ConfirmedAdmin(BasePermission):
    """`logs`'s permission: db_service confirms the token and that its bearer is an admin, so
    a token it revoked is UNAUTHENTICATED, not FORBIDDEN by its role claim. A refusal happens
    before the subscription's body, so it is recorded here: an attempt to read the log is
    exactly what the log should show."""

    message = "this operation is for administrators"
    error_extensions = {"code": ApiCode.FORBIDDEN}  # noqa: RUF012 - Strawberry's own attribute

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        scope = info.context.scope
        started = time.perf_counter()
        try:
            scope.require_identity()
            await confirm_admin(scope)
        except Exception as exc:
            _record(scope, info.context.runtime, outcome_of(exc), started)
            raise
        return True


@strawberry.type
class LogSubscriptions:
    @strawberry.subscription(permission_classes=[ConfirmedAdmin])
    async def logs(
        self, info: Info, from_beginning: bool = False
    ) -> AsyncGenerator[LogRecord, None]:
        """Records from now on (or from the oldest kept), until the client unsubscribes or the
        token expires or is revoked."""
        scope = info.context.scope
        runtime = info.context.runtime
        started = time.perf_counter()
        outcome = "ok"
        try:
            async with aclosing(_tail(scope, runtime, from_beginning=from_beginning)) as records:
                async for record in records:
                    yield record
        except Exception as exc:
            outcome = outcome_of(exc)
            raise
        finally:
            # One record per subscription, for its whole life (its events record nothing).
            _record(scope, runtime, outcome, started)


def _record(scope: RequestScope, runtime: Runtime, outcome: str, started: float) -> None:
    runtime.record(
        kind="graphql",
        operation="Subscription.logs",
        user=scope.user_label,
        outcome=outcome,
        started=started,
        request_id=scope.request_id,
    )


async def _tail(
    scope: RequestScope, runtime: Runtime, *, from_beginning: bool
) -> AsyncGenerator[LogRecord, None]:
    """The topic's records until the stream's deadline, or until the session ends."""
    request = pb.TailLogsRequest(from_beginning=True) if from_beginning else pb.TailLogsRequest()
    # Even a stream has a deadline: at LOG_TAIL_MAX_S it ends and the client subscribes again.
    call = runtime.backends.logging.TailLogs(request, timeout=runtime.settings.log_tail_max_s)
    ended = asyncio.create_task(
        session_end(
            scope,
            recheck_s=runtime.settings.session_recheck_s,
            check=lambda: confirm_admin(scope),
        )
    )
    following: asyncio.Task[object] | None = None
    seen = RecentKeys()  # a re-sent record (its batch sent twice: same event_id) goes once
    try:
        while True:
            following = asyncio.create_task(call.read())
            await asyncio.wait({following, ended}, return_when=asyncio.FIRST_COMPLETED)
            # The end first: a busy topic must not keep a revoked session going.
            if ended.done():
                raise ended.result()
            record = following.result()
            if record is grpc.aio.EOF:
                return
            assert isinstance(record, pb.LogRecord)
            if seen.first_time(record.event_id):
                yield LogRecord.from_pb(record)
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
            return
        # Through the one table (gateway.errors): logging_service's tail limit is coded as a
        # rate limit, Kafka or the service out of reach is UNAVAILABLE, anything else a bug.
        raise from_rpc_error(exc) from exc
    finally:
        ended.cancel()
        if following is not None:
            following.cancel()
        call.cancel()
