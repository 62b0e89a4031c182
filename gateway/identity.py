"""The gateway's early token check: who is calling, for permissions and log records.

db_service checks every token again and is the authority (revocation, deactivation); this check
only lets the gateway answer 401 early without a backend round trip.
"""

from __future__ import annotations

from dataclasses import dataclass

from db_service.tokens import InvalidToken, TokenCodec, bearer_token


@dataclass(frozen=True, slots=True)
class Identity:
    sid: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True, slots=True)
class Credentials:
    """What the Authorization header said: the raw value to forward and who it names."""

    authorization: str | None
    identity: Identity | None

    @property
    def presented_invalid(self) -> bool:
        return self.authorization is not None and self.identity is None


class TokenChecker:
    def __init__(self, codec: TokenCodec) -> None:
        self._codec = codec

    def check(self, authorization: str | None) -> Credentials:
        token = bearer_token(authorization)
        if token is None:
            return Credentials(authorization=authorization or None, identity=None)
        try:
            claims = self._codec.verify(token)
        except InvalidToken:
            return Credentials(authorization=authorization, identity=None)
        return Credentials(
            authorization=authorization, identity=Identity(sid=claims.sid, role=claims.role)
        )
