"""JSON Web Tokens, part of the wire contract: the claims db_service's Login issues, and their
verification by every other RPC and early by the gateway.

HS256 only: decoding pins the algorithm and requires `exp`, `iat` and `sub`, so `alg: none`,
other algorithms, tampered and expired tokens are all refused the same way.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt

ALGORITHM = "HS256"
MAX_TOKEN_LENGTH = 4096
# A compact JWS: three base64url segments. Checked before decoding, so a verified token is
# plain ASCII with no whitespace (the gateway forwards it as gRPC metadata).
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


class InvalidToken(Exception):
    """The token is missing, malformed, badly signed or expired."""


@dataclass(frozen=True, slots=True)
class Claims:
    """What a verified token says about its bearer."""

    sid: str
    role: str
    version: int
    # `exp`, in seconds since the epoch: when a long-lived session on this token must end.
    expires_at: float


@dataclass(frozen=True, slots=True)
class TokenCodec:
    """Issues and verifies tokens with one secret."""

    secret: str
    issuer: str
    ttl_s: int

    def issue(self, *, sid: str, role: str, version: int) -> str:
        now = int(time.time())
        payload: dict[str, Any] = {
            "sub": sid,
            "role": role,
            "ver": version,
            "iat": now,
            "exp": now + self.ttl_s,
            "iss": self.issuer,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(payload, self.secret, algorithm=ALGORITHM)

    def verify(self, token: str) -> Claims:
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise InvalidToken("missing or oversized token")
        if not _COMPACT_JWS.fullmatch(token):
            raise InvalidToken("not a compact JWS")
        try:
            payload = jwt.decode(
                token,
                self.secret,
                algorithms=[ALGORITHM],
                issuer=self.issuer,
                options={"require": ["exp", "iat", "sub", "iss"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        sub, role, ver = payload.get("sub"), payload.get("role"), payload.get("ver")
        if not isinstance(sub, str) or not isinstance(role, str) or type(ver) is not int:
            raise InvalidToken("malformed claims")
        return Claims(sid=sub, role=role, version=ver, expires_at=float(payload["exp"]))


def bearer_token(header_value: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` value, or None when absent or not Bearer."""
    if not header_value:
        return None
    scheme, _, token = header_value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
