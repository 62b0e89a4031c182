"""A query parameter the gateway reads is given once or not at all (gateway.queryparams)."""

from __future__ import annotations

import pytest
from starlette.datastructures import QueryParams

from gateway.queryparams import RepeatedParameter, one_value


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("limit=5", "5"),
        ("", None),
        ("offset=1", None),
        ("limit=&offset=1", ""),
        ("limit=5&x=1&x=2", "5"),
    ],
)
def test_a_parameter_given_at_most_once_is_read(query: str, expected: str | None) -> None:
    # given a query string with `limit` once or not at all (others repeated or not)
    # when `limit` is read; then it is its one value, or None
    assert one_value(QueryParams(query), "limit") == expected


@pytest.mark.parametrize("query", ["limit=1&limit=2", "limit=5&limit=5", "limit=1&offset=0&limit="])
def test_a_parameter_given_twice_is_refused_by_name(query: str) -> None:
    # given `limit` more than once, with other values or the same one
    # when it is read; then it is refused, naming it, whichever value a reader would take
    with pytest.raises(
        RepeatedParameter, match="the query parameter 'limit' is given more than once"
    ):
        one_value(QueryParams(query), "limit")
