"""How long a long-lived session (a subscription) may go on on one token.

A request checks its token once; a subscription may stream for an hour. It must stop when its
token expires, and when db_service (the authority: an inactive user or a changed token version
means revoked) no longer accepts the token, which it re-checks every `recheck_s` seconds:

    ended = asyncio.create_task(session_end(scope, recheck_s=30, check=confirm))
    ...stream until `ended` is done, then raise `ended.result()`
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from gateway.errors import ApiError
from gateway.scope import RequestScope


async def session_end(
    scope: RequestScope, *, recheck_s: float, check: Callable[[], Awaitable[object]]
) -> ApiError:
    """Wait until the session must end, and return the error that ends it.

    `check` asks db_service whether the caller may still go on, raising ApiError when not. Any
    failure ends the session, an unavailable db_service included: a session nobody can
    vouch for does not go on.
    """
    expires_at = scope.require_identity().expires_at
    while True:
        remaining = expires_at - time.time()
        if remaining <= 0:
            return ApiError.unauthenticated("the token has expired")
        await asyncio.sleep(min(recheck_s, remaining))
        if expires_at <= time.time():
            return ApiError.unauthenticated("the token has expired")
        try:
            await check()
        except ApiError as exc:
            return exc
