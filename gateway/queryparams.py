"""Query parameters as both APIs read them: each one given at most once.

`?limit=1&limit=2` has no one meaning: Starlette reads the last value, while a cache, a proxy or
a framework in front may read the first, and so see another request than the one answered. A
parameter the gateway reads is therefore refused when it is given more than once (REST: 400
BAD_USER_INPUT; GraphQL over GET: 400 BAD_REQUEST, as its other malformed requests).

    limit = one_value(request.query_params, "limit")  # None when absent
"""

from __future__ import annotations

from starlette.datastructures import QueryParams


class RepeatedParameter(ValueError):
    """A query parameter given more than once; the message names it and is safe to show."""


def one_value(params: QueryParams, name: str) -> str | None:
    """The one value of query parameter `name`, or None without one; RepeatedParameter when
    it is given more than once (even with the same value: a reader may still take another)."""
    values = params.getlist(name)
    if len(values) > 1:
        raise RepeatedParameter(f"the query parameter {name!r} is given more than once")
    return values[0] if values else None
