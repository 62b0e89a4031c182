"""The gateway's early token check: who is calling, for permissions and log records.

db_service checks every token again and is the authority (revocation, deactivation); this check
only lets the gateway answer 401 early without a backend round trip.
"""

from __future__ import annotations

from dataclasses import dataclass

from protos.tokens import InvalidToken, TokenCodec, bearer_token


@dataclass(frozen=True, slots=True)
class Identity:
    sid: str
    role: str
    # When the token ends (seconds since the epoch); a subscription stops streaming then.
    expires_at: float

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True, slots=True)
class Credentials:
    """Who the caller is, and the Authorization value forwarded to db_service on their behalf.

    `authorization` is set only for a token the gateway verified itself, rebuilt as
    `Bearer <token>`: nothing else a client puts in the header reaches gRPC metadata, where a
    tab or a non-ASCII byte made grpc refuse the whole call. An unverifiable header is no
    credential at all: public operations answer as for an anonymous caller, the others 401.
    """

    authorization: str | None
    identity: Identity | None


ANONYMOUS = Credentials(authorization=None, identity=None)


class TokenChecker:
    def __init__(self, codec: TokenCodec) -> None:
        self._codec = codec

    def check(self, authorization: str | None) -> Credentials:
        token = bearer_token(authorization)
        if token is None:
            return ANONYMOUS
        try:
            claims = self._codec.verify(token)
        except InvalidToken:
            return ANONYMOUS
        return Credentials(
            authorization=f"Bearer {token}",
            identity=Identity(sid=claims.sid, role=claims.role, expires_at=claims.expires_at),
        )
