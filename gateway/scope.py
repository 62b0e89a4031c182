"""One request as the operations see it, whichever API it came through."""

from __future__ import annotations

from dataclasses import dataclass

import protos.db_service_pb2 as pb
from gateway.backends import DBClient, Reply, Request, Rpc
from gateway.errors import ApiError
from gateway.identity import Credentials, Identity


@dataclass(slots=True)
class RequestScope:
    db: DBClient
    credentials: Credentials
    request_id: str
    # The client's address (gateway.clientaddr): the key of db_service's per-client limits.
    client: str = ""

    @property
    def identity(self) -> Identity | None:
        return self.credentials.identity

    @property
    def user_label(self) -> str:
        """The caller for log records: a sid, or "anonymous"."""
        return self.identity.sid if self.identity else "anonymous"

    def require_identity(self) -> Identity:
        if self.identity is None:
            raise ApiError.unauthenticated()
        return self.identity

    async def require_admin(self) -> Identity:
        """The caller, when the token's role claim is admin (db_service checks again). Any
        other caller is refused, but only once db_service has confirmed the token still
        stands: a revoked token is UNAUTHENTICATED (log in again), as it is everywhere else,
        not FORBIDDEN by a claim that no longer counts."""
        identity = self.require_identity()
        if not identity.is_admin:
            await self.call(self.db.stub.GetUser, pb.GetUserRequest(sid=identity.sid))
            raise ApiError.forbidden()
        return identity

    async def call(
        self, rpc: Rpc[Request, Reply], request: Request, *, idempotent_write: bool = False
    ) -> Reply:
        """Call DBService as this request's caller (see DBClient.call for `idempotent_write`).

        reply = await scope.call(scope.db.stub.GetUser, pb.GetUserRequest(sid=sid))
        """
        return await self.db.call(
            rpc,
            request,
            authorization=self.credentials.authorization,
            request_id=self.request_id,
            idempotent_write=idempotent_write,
        )
