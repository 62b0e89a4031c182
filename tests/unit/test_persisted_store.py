"""The persisted-query store is bounded and least-recently-used."""

from __future__ import annotations

import hashlib

import pytest

from gateway.graphql.persisted import PersistedQueries, PersistedQueryError


def _ext(text: str) -> dict[str, object]:
    return {
        "persistedQuery": {"version": 1, "sha256Hash": hashlib.sha256(text.encode()).hexdigest()}
    }


def test_the_store_keeps_at_most_maxsize_documents() -> None:
    store = PersistedQueries(maxsize=2)
    for text in ("{ a }", "{ b }", "{ c }"):
        store.resolve(text, _ext(text))

    with pytest.raises(PersistedQueryError):
        store.resolve(None, _ext("{ a }"))
    assert store.resolve(None, _ext("{ c }")) == "{ c }"


def test_requests_without_the_extension_pass_through() -> None:
    assert PersistedQueries().resolve("{ welcome }", None) == "{ welcome }"


@pytest.mark.parametrize(
    "extension", [{"persistedQuery": {}}, {"persistedQuery": {"sha256Hash": "abc"}}]
)
def test_a_malformed_extension_is_bad_input(extension: dict[str, object]) -> None:
    with pytest.raises(PersistedQueryError) as refused:
        PersistedQueries().resolve("{ welcome }", extension)

    assert refused.value.error.extensions == {"code": "BAD_USER_INPUT"}
