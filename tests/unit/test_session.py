"""gateway.session: a subscription's session ends at token expiry or when a re-check fails."""

from __future__ import annotations

import time

from gateway.errors import ApiError
from gateway.identity import Credentials, Identity
from gateway.scope import RequestScope
from gateway.session import session_end


def _scope(expires_in_s: float) -> RequestScope:
    identity = Identity(sid="A1", role="admin", expires_at=time.time() + expires_in_s)
    credentials = Credentials(authorization="Bearer t", identity=identity)
    return RequestScope(db=None, credentials=credentials, request_id="r")  # type: ignore[arg-type]


async def test_an_expired_token_ends_the_session_at_once() -> None:
    # given a token that expired a second ago
    scope = _scope(-1)

    # when the session is watched
    ended = await session_end(scope, recheck_s=30, check=lambda: _never())

    # then it has ended, unauthenticated
    assert ended.code == "UNAUTHENTICATED"


async def test_the_session_goes_on_until_the_first_failed_recheck() -> None:
    # given a long-lived token whose third re-check fails because db_service is down
    checks = 0

    async def check() -> None:
        nonlocal checks
        checks += 1
        if checks == 3:
            raise ApiError("UNAVAILABLE", "db_service is down", http_status=503)

    # when the session is watched with quick re-checks
    ended = await session_end(_scope(3600), recheck_s=0.01, check=check)

    # then it ended at that re-check, with its error: nobody could vouch for the token
    assert checks == 3
    assert ended.code == "UNAVAILABLE"


async def _never() -> None:
    raise AssertionError("an expired session needs no re-check")
