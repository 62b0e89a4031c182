"""Automatic persisted queries (Apollo's protocol): clients send a document's sha256 instead of
its text once the gateway has seen the text.

    {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "<hex>"}}}

The first request sends hash and text: the text must hash to the hash (in either case of hex
digits), and is kept once its document has parsed, validated and stayed within the limits
(`keep`, called by the endpoint after that), so a request that is refused anyway cannot take
a place in the store. Later requests send only the hash; an unknown hash answers
PERSISTED_QUERY_NOT_FOUND (the client then sends the text again). The text a hash stands for is
the same string every time, so the parser and validation caches find it: a known document is
neither parsed nor validated again. The store is a least-recently-used cache per gateway
process, bounded by documents and by their total characters, a cache and never the source of
truth.
"""

from __future__ import annotations

import hashlib
import string
from typing import Any

from graphql import GraphQLError

from gateway.errors import ApiCode
from gateway.graphql.doccache import TextLRU

NOT_FOUND = ApiCode.PERSISTED_QUERY_NOT_FOUND
_HEX = frozenset(string.hexdigits)


class PersistedQueryError(Exception):
    """The request's persisted-query extension cannot be honoured."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.error = GraphQLError(message, extensions={"code": code})


class PersistedQueries:
    """sha256 hex (lower case) → document text: at most `max_entries` documents and
    `max_chars` characters of them (each charged a little more than its length), least
    recently used evicted first; either bound at 0 keeps nothing."""

    def __init__(self, max_entries: int = 1000, max_chars: int = 1024 * 1024) -> None:
        self._documents: TextLRU[str, str] | None = (
            TextLRU(max_entries=max_entries, max_chars=max_chars)
            if max_entries > 0 and max_chars > 0
            else None
        )

    def __len__(self) -> int:
        return len(self._documents) if self._documents is not None else 0

    def resolve(self, query: str | None, extensions: dict[str, Any] | None) -> str | None:
        """The document text to execute for a request (unchanged when it uses no hash)."""
        persisted = (extensions or {}).get("persistedQuery")
        if persisted is None:
            return query
        digest = _digest(persisted)
        if query is None:
            known = self._documents.get(digest) if self._documents is not None else None
            if known is None:
                raise PersistedQueryError(NOT_FOUND, "PersistedQueryNotFound")
            return known
        if hashlib.sha256(query.encode()).hexdigest() != digest:
            raise PersistedQueryError(
                ApiCode.BAD_USER_INPUT, "provided sha256Hash does not match query"
            )
        return query

    def keep(self, query: str, extensions: dict[str, Any] | None) -> None:
        """Remember `query` under its hash when its request registered it (sent the text with
        a hash `resolve` accepted). Call only once the document has passed validation and the
        limits."""
        if self._documents is None or "persistedQuery" not in (extensions or {}):
            return
        digest = hashlib.sha256(query.encode()).hexdigest()
        self._documents.put(digest, query, size=len(query))


def _digest(persisted: object) -> str:
    """The extension's sha256Hash in lower case, or BAD_USER_INPUT when the extension is not
    Apollo's version 1 with a hash of 64 hex digits."""
    if not isinstance(persisted, dict):
        raise PersistedQueryError(ApiCode.BAD_USER_INPUT, "persistedQuery must be an object")
    version = persisted.get("version")
    if version != 1 or isinstance(version, bool):
        raise PersistedQueryError(
            ApiCode.BAD_USER_INPUT, "persistedQuery version must be 1 (the only one there is)"
        )
    digest = persisted.get("sha256Hash")
    if not isinstance(digest, str) or len(digest) != 64 or not _HEX.issuperset(digest):
        raise PersistedQueryError(
            ApiCode.BAD_USER_INPUT,
            "persistedQuery.sha256Hash must be the document's SHA-256 in 64 hex digits",
        )
    return digest.lower()
