"""One request as the operations see it, whichever API it came through."""

from __future__ import annotations

from dataclasses import dataclass

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

    def require_admin(self) -> Identity:
        identity = self.require_identity()
        if not identity.is_admin:
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
