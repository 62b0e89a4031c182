"""JSON Web Tokens, part of the wire contract: the claims db_service's Login issues, and their
verification by every other RPC and early by the gateway.

HS256 only: decoding pins the algorithm and requires `exp`, `iat`, `sub` and `iss`, so `alg: none`,
other algorithms, tampered and expired tokens are all refused the same way.

A codec remembers the tokens it verified (up to VERIFIED_MAX, oldest forgotten first): the same
token string again is answered from memory, its expiry checked against the clock as PyJWT checks
it (expired once `exp <= now`). A client sends its token with every request, and the full check
(base64, JSON, HMAC and PyJWT's claim checks) costs 37-57 µs here, twice per request (gateway
and db_service); a remembered token costs 0.4 µs. Only the signature and the claims are
remembered: whether the token is still current (revoked by a password change, an account
deactivated) is db_service's check against the database, made on every call as before.
"""

from __future__ import annotations

import re
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt

ALGORITHM = "HS256"
MAX_TOKEN_LENGTH = 4096
# Verified tokens a codec remembers: one per active session of a process. Only tokens signed
# with the secret get in; with the ~270-byte tokens Login issues, 10,000 of them and their
# claims hold ~7 MB (measured with tracemalloc).
VERIFIED_MAX = 10_000
# How far ahead of this host's clock a token's `iat` may be: the replica that issued it may run
# ahead (one host's db_service, another's gateway), and a token refused just after login would
# be a 401 for nothing. Given to PyJWT as its leeway, which would also stretch `exp`; expiry
# is checked again without it (`_decode`), so a token still ends at its second.
CLOCK_SKEW_S = 5
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
    """Issues and verifies tokens with one secret. Verify from one thread (the event loop)."""

    secret: str = field(repr=False)
    issuer: str
    ttl_s: int
    verified_max: int = VERIFIED_MAX
    # Wall-clock seconds since the epoch (time.time, or a test's clock ahead of it): a remembered
    # token is checked against this clock alone; the full check also against PyJWT's.
    clock: Callable[[], float] = field(default=time.time, repr=False, compare=False)
    # token -> its claims (expires_at is `exp` as PyJWT compares it): tokens this codec
    # verified, oldest first.
    _verified: OrderedDict[str, Claims] = field(
        default_factory=OrderedDict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if self.verified_max < 1:
            raise ValueError("verified_max must be at least 1")

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
        known = self._verified.get(token)
        if known is not None:
            if known.expires_at > self.clock():
                return known
            self._verified.pop(token, None)  # expired: the full check below refuses it
        claims = self._decode(token)
        if len(self._verified) >= self.verified_max:
            self._verified.popitem(last=False)
        self._verified[token] = claims
        return claims

    def _decode(self, token: str) -> Claims:
        """The full check, without memory."""
        if not _COMPACT_JWS.fullmatch(token):
            raise InvalidToken("not a compact JWS")
        try:
            payload = jwt.decode(
                token,
                self.secret,
                algorithms=[ALGORITHM],
                issuer=self.issuer,
                leeway=CLOCK_SKEW_S,
                options={"require": ["exp", "iat", "sub", "iss"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        sub, role, ver = payload.get("sub"), payload.get("role"), payload.get("ver")
        if not isinstance(sub, str) or not isinstance(role, str) or type(ver) is not int:
            raise InvalidToken("malformed claims")
        expires = int(payload["exp"])  # as PyJWT reads it: a token ends at the whole second
        if expires <= self.clock():
            raise InvalidToken("Signature has expired")
        return Claims(sid=sub, role=role, version=ver, expires_at=float(expires))


def bearer_token(header_value: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` value, or None when absent or not Bearer."""
    if not header_value:
        return None
    scheme, _, token = header_value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
