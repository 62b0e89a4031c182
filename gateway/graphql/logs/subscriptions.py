"""`subscription { logs }`: admins watch every recorded call live, backed by TailLogs."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import grpc
import strawberry

from gateway.errors import ApiError
from gateway.graphql.context import Info
from gateway.graphql.logs.types import LogRecord
from gateway.graphql.permissions import IsAdmin, IsAuthenticated
from gateway.operations import users
from protos import db_service_pb2
from protos import logging_service_pb2 as pb


@strawberry.type
class LogSubscriptions:
    @strawberry.subscription(permission_classes=[IsAuthenticated, IsAdmin])
    async def logs(
        self, info: Info, from_beginning: bool = False
    ) -> AsyncGenerator[LogRecord, None]:
        """Records from now on (or from the oldest kept), until the client unsubscribes."""
        scope = info.context.scope
        # The token's role claim let us this far; db_service confirms the admin is still one.
        me = await users.me(scope)
        if me.role != db_service_pb2.ROLE_ADMIN:
            raise ApiError.forbidden()
        request = (
            pb.TailLogsRequest(from_beginning=True) if from_beginning else pb.TailLogsRequest()
        )
        # Even a stream has a deadline: at LOG_TAIL_MAX_S it ends and the client subscribes again.
        runtime = info.context.runtime
        call = runtime.backends.logging.TailLogs(request, timeout=runtime.settings.log_tail_max_s)
        try:
            async for record in call:
                yield LogRecord.from_pb(record)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                return
            raise ApiError(
                "UNAVAILABLE", "the log stream is unavailable, retry later", http_status=503
            ) from exc
        finally:
            call.cancel()
