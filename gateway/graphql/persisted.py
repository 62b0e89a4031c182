"""Automatic persisted queries (Apollo's protocol): clients send a document's sha256 instead of
its text once the gateway has seen the text.

    {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "<hex>"}}}

The first request sends hash and text: the text must hash to the hash, and is kept. Later
requests send only the hash; an unknown hash answers PERSISTED_QUERY_NOT_FOUND (the client then
sends the text again). The text a hash stands for is the same string every time, so the parser
and validation caches find it: a known document is neither parsed nor validated again. The
store is a bounded LRU per gateway process, a cache and never the source of truth.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any

from graphql import GraphQLError

NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"


class PersistedQueryError(Exception):
    """The request's persisted-query extension cannot be honoured."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.error = GraphQLError(message, extensions={"code": code})


class PersistedQueries:
    """sha256 hex → document text, at most `maxsize` documents, least recently used evicted."""

    def __init__(self, maxsize: int = 1000) -> None:
        self._maxsize = maxsize
        self._documents: OrderedDict[str, str] = OrderedDict()

    def resolve(self, query: str | None, extensions: dict[str, Any] | None) -> str | None:
        """The document text to execute for a request (unchanged when it uses no hash)."""
        persisted = (extensions or {}).get("persistedQuery")
        if persisted is None:
            return query
        digest = persisted.get("sha256Hash") if isinstance(persisted, dict) else None
        if not isinstance(digest, str) or len(digest) != 64:
            raise PersistedQueryError("BAD_USER_INPUT", "persistedQuery needs a sha256Hash")
        if query is None:
            known = self._documents.get(digest)
            if known is None:
                raise PersistedQueryError(NOT_FOUND, "PersistedQueryNotFound")
            self._documents.move_to_end(digest)
            return known
        if hashlib.sha256(query.encode()).hexdigest() != digest.lower():
            raise PersistedQueryError("BAD_USER_INPUT", "provided sha256Hash does not match query")
        self._documents[digest.lower()] = query
        self._documents.move_to_end(digest.lower())
        while len(self._documents) > self._maxsize:
            self._documents.popitem(last=False)
        return query
