"""What the GraphQL pipeline keeps of the documents clients send: no more than its document
cache's character budget, whatever the documents and however many; and nothing of one it lets
go that only the garbage collector could free."""

from __future__ import annotations

import gc
import itertools
from collections.abc import AsyncIterator

import httpx
import pytest
from graphql import DocumentNode, parse

from gateway.graphql.documents import unlink_tokens
from gateway.graphql.limits import GraphQLLimits
from gateway.graphql.pipeline import DOCUMENT_CACHE_CHARS, GraphQLPipeline
from gateway.graphql.schema import build_schema
from gateway.runtime import Runtime
from gateway.settings import Settings

# Each document is this long, so the cache's budget holds only a few dozen of them.
DOCUMENT_CHARS = 20_000
DOCUMENTS = 60

_serial = itertools.count()


def _refused_document() -> str:
    """A distinct document that parses and is within every limit, but fails validation."""
    padding = f"{next(_serial):08d}".ljust(DOCUMENT_CHARS, "x")
    return f'query {{ user(sid: "{padding}") {{ noSuchField }} }}'


def _answered_document() -> str:
    """A distinct document that runs with no backend (the padding is a comment)."""
    padding = f"{next(_serial):08d}".ljust(DOCUMENT_CHARS, "x")
    return f"query {{ welcome }}\n# {padding}\n"


@pytest.fixture
async def pipeline() -> AsyncIterator[GraphQLPipeline]:
    settings = Settings(merch_env="development", log_shipping=False, log_spool_dir="")
    runtime = Runtime(settings)
    await runtime.start()
    limits = GraphQLLimits()
    try:
        yield GraphQLPipeline(runtime, build_schema(limits), limits, graphiql=False)
    finally:
        await runtime.stop()


@pytest.fixture
async def graphql(pipeline: GraphQLPipeline) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=pipeline)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        yield client


def _live_documents() -> int:
    gc.collect()
    return sum(isinstance(o, DocumentNode) for o in gc.get_objects())


@pytest.mark.parametrize(
    ("document", "answer"),
    [
        (_refused_document, "GRAPHQL_VALIDATION_FAILED"),
        (_answered_document, None),
    ],
)
async def test_distinct_documents_keep_no_more_alive_than_the_cache_budget(
    graphql: httpx.AsyncClient, document: object, answer: str | None
) -> None:
    # given a pipeline and a client sending distinct large documents, none seen before
    assert callable(document)
    before = _live_documents()
    # when it sends many more than the document cache's characters can hold
    for _ in range(DOCUMENTS):
        response = await graphql.post("/graphql", json={"query": document()})
        errors = response.json().get("errors") or [{}]
        assert errors[0].get("extensions", {}).get("code") == answer, response.text
    # then the parsed documents still alive fit in the cache's budget: none is held by
    # anything else (the measures of their limits, once kept apart, held 1,000 of them)
    assert _live_documents() - before <= DOCUMENT_CACHE_CHARS // DOCUMENT_CHARS


def test_a_parsed_document_leaves_nothing_for_the_collector() -> None:
    # given a document as the pipeline parses it, and the collector off
    gc.collect()
    gc.disable()
    try:
        document = parse(_answered_document(), max_tokens=GraphQLLimits().max_tokens)
        # when its tokens are unlinked and it is let go, as the document cache evicts one
        unlink_tokens(document)
        del document
        # then reference counting has freed it all: nothing waits for a collection, which a
        # document the heap freezer froze would wait for until its next full refreeze (the
        # parser's tokens point at the next and back: a cycle per document until 2026-12-07)
        assert gc.collect() == 0
    finally:
        gc.enable()


async def test_the_pipeline_unlinks_the_tokens_of_the_documents_it_keeps(
    pipeline: GraphQLPipeline, graphql: httpx.AsyncClient
) -> None:
    # when a document is answered
    text = _answered_document()
    response = await graphql.post("/graphql", json={"query": text})
    assert "welcome" in response.json()["data"]
    # then the document its cache keeps holds no list of tokens
    prepared = pipeline.documents.get(text)
    assert prepared is not None
    assert prepared.document.loc is not None
    first = prepared.document.loc.start_token
    assert (first.prev, first.next) == (None, None)
