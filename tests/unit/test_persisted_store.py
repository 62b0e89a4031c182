"""The persisted-query store is bounded by documents and characters, least-recently-used, keeps
only what it is told passed, and finds a hash in either case."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest

from gateway.graphql.persisted import PersistedQueries, PersistedQueryError


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _ext(text: str, digest: str | None = None) -> dict[str, object]:
    return {"persistedQuery": {"version": 1, "sha256Hash": digest or _digest(text)}}


def _register(store: PersistedQueries, text: str, digest: str | None = None) -> None:
    """What the endpoint does for a text sent with its hash whose document passed."""
    assert store.resolve(text, _ext(text, digest)) == text
    store.keep(text, _ext(text, digest))


def _known(store: PersistedQueries, text: str, digest: str | None = None) -> bool:
    """Whether the hash alone finds `text` (PERSISTED_QUERY_NOT_FOUND otherwise)."""
    try:
        return store.resolve(None, _ext(text, digest)) == text
    except PersistedQueryError as exc:
        if exc.error.extensions != {"code": "PERSISTED_QUERY_NOT_FOUND"}:
            raise
        return False


def test_the_store_keeps_at_most_max_entries_documents() -> None:
    # given a store of two documents; when three are registered
    store = PersistedQueries(max_entries=2)
    for text in ("{ a }", "{ b }", "{ c }"):
        _register(store, text)

    # then the least recently used is gone
    assert not _known(store, "{ a }")
    assert _known(store, "{ b }")
    assert _known(store, "{ c }")


def test_the_store_keeps_at_most_max_chars_of_text() -> None:
    # given a store of many documents but few characters
    store = PersistedQueries(max_entries=1000, max_chars=4000)
    texts = [f"{{ welcome }} # {i} " + "x" * 1000 for i in range(5)]

    # when five documents of about 1,000 characters are registered
    for text in texts:
        _register(store, text)

    # then only the most recent that fit in 4,000 characters are kept
    assert [_known(store, t) for t in texts] == [False, False, True, True, True]


def test_a_document_larger_than_the_whole_store_is_not_kept() -> None:
    store = PersistedQueries(max_entries=10, max_chars=500)
    _register(store, "{ small }")
    _register(store, "{ welcome } #" + "x" * 1000)

    assert _known(store, "{ small }")
    assert len(store) == 1


def test_a_text_is_kept_only_when_the_endpoint_says_it_passed() -> None:
    # given a registration that was resolved (its hash matches) but whose document was refused
    store = PersistedQueries()
    assert store.resolve("{ nope }", _ext("{ nope }")) == "{ nope }"

    # when its hash alone is sent, then it is unknown: resolving keeps nothing
    assert not _known(store, "{ nope }")


def test_keep_ignores_a_request_that_did_not_register() -> None:
    store = PersistedQueries()
    store.keep("{ welcome }", None)

    assert len(store) == 0


@pytest.mark.parametrize(("registered", "asked"), [(str.lower, str.upper), (str.upper, str.lower)])
def test_a_hash_is_found_in_either_case(
    registered: Callable[[str], str], asked: Callable[[str], str]
) -> None:
    # given a document registered under its hash in one case
    store = PersistedQueries()
    digest = _digest("{ welcome }")
    _register(store, "{ welcome }", registered(digest))

    # when the hash comes back in the other case, then the document is found
    assert _known(store, "{ welcome }", asked(digest))


def test_a_store_of_no_documents_keeps_nothing() -> None:
    store = PersistedQueries(max_entries=0)
    _register(store, "{ welcome }")

    assert not _known(store, "{ welcome }")


def test_requests_without_the_extension_pass_through() -> None:
    assert PersistedQueries().resolve("{ welcome }", None) == "{ welcome }"


@pytest.mark.parametrize(
    ("extension", "message"),
    [
        ({"persistedQuery": {}}, "version must be 1"),
        ({"persistedQuery": {"sha256Hash": _digest("{ welcome }")}}, "version must be 1"),
        ({"persistedQuery": {"version": 2, "sha256Hash": _digest("{ welcome }")}}, "version"),
        ({"persistedQuery": {"version": True, "sha256Hash": _digest("{ welcome }")}}, "version"),
        ({"persistedQuery": {"version": 1}}, "64 hex digits"),
        ({"persistedQuery": {"version": 1, "sha256Hash": "abc"}}, "64 hex digits"),
        ({"persistedQuery": {"version": 1, "sha256Hash": "z" * 64}}, "64 hex digits"),
        ({"persistedQuery": "not an object"}, "must be an object"),
    ],
)
def test_a_malformed_extension_is_bad_input(extension: dict[str, object], message: str) -> None:
    with pytest.raises(PersistedQueryError) as refused:
        PersistedQueries().resolve("{ welcome }", extension)

    assert refused.value.error.extensions == {"code": "BAD_USER_INPUT"}
    assert message in refused.value.error.message
