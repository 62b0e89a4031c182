"""Persisted queries: a known document can be sent as its sha256 instead of its text."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import httpx
import orjson

from tests.factories import error_codes

QUERY = "query Product($id: Int!) { product(id: $id) { id name price } }"
HASH = hashlib.sha256(QUERY.encode()).hexdigest()


def _persisted(digest: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": digest}}


async def _post(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/graphql", json=body)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


async def test_unknown_hash_asks_for_the_text(client: httpx.AsyncClient) -> None:
    unknown = hashlib.sha256(b"{ welcome } # never sent").hexdigest()

    body = await _post(client, {"extensions": _persisted(unknown)})

    assert error_codes(body) == ["PERSISTED_QUERY_NOT_FOUND"]


async def test_hash_with_text_registers_then_hash_alone_runs_it(
    client: httpx.AsyncClient,
) -> None:
    variables = {"id": 1}

    first = await _post(
        client, {"query": QUERY, "variables": variables, "extensions": _persisted(HASH)}
    )
    again = await _post(client, {"variables": variables, "extensions": _persisted(HASH)})

    assert first["data"]["product"]["id"] == 1
    assert again == first


async def test_a_hash_that_does_not_match_the_text_is_refused(client: httpx.AsyncClient) -> None:
    wrong = hashlib.sha256(b"something else").hexdigest()

    body = await _post(client, {"query": QUERY, "extensions": _persisted(wrong)})
    later = await _post(client, {"extensions": _persisted(wrong)})

    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert error_codes(later) == ["PERSISTED_QUERY_NOT_FOUND"]


async def test_a_hash_is_accepted_in_either_case(client: httpx.AsyncClient) -> None:
    # given a document registered under its hash in upper case
    query = f"query Q{uuid.uuid4().hex} {{ welcome }}"
    digest = hashlib.sha256(query.encode()).hexdigest()
    registered = await _post(client, {"query": query, "extensions": _persisted(digest.upper())})

    # when its hash alone comes back in either case
    answers = [
        await _post(client, {"extensions": _persisted(case(digest))})
        for case in (str.upper, str.lower)
    ]

    # then both run it
    assert "errors" not in registered
    assert answers == [registered, registered]


async def test_a_registration_of_a_document_seen_before_is_kept(
    client: httpx.AsyncClient,
) -> None:
    # given a document that ran before as plain text (so it now takes the fast path)
    query = f"# {uuid.uuid4().hex}\n{{ welcome }}"
    digest = hashlib.sha256(query.encode()).hexdigest()
    plain = await _post(client, {"query": query})

    # when it is registered, then sent as its hash alone
    registered = await _post(client, {"query": query, "extensions": _persisted(digest)})
    again = await _post(client, {"extensions": _persisted(digest)})

    # then the hash runs it
    assert plain == registered == again


async def test_a_hash_runs_over_get_as_apollo_clients_send_it(client: httpx.AsyncClient) -> None:
    # given a document registered by POST
    await _post(client, {"query": QUERY, "variables": {"id": 1}, "extensions": _persisted(HASH)})
    unknown = hashlib.sha256(b"{ welcome } # never sent over GET").hexdigest()

    # when a client sends only its hash over GET (cacheable), with a browser's Accept header
    # or curl's, or a hash the gateway does not know
    params = {"variables": '{"id": 1}', "extensions": orjson.dumps(_persisted(HASH)).decode()}
    answers = [
        await client.get("/graphql", params=params, headers={"Accept": accept})
        for accept in ("*/*", "text/html,application/json")
    ]
    missing = await client.get(
        "/graphql", params={"extensions": orjson.dumps(_persisted(unknown)).decode()}
    )

    # then the query runs, or the client is asked for the text: never the GraphiQL page
    for answer in answers:
        assert answer.status_code == 200, answer.text[:200]
        assert answer.json()["data"]["product"]["id"] == 1
    assert error_codes(missing.json()) == ["PERSISTED_QUERY_NOT_FOUND"]
