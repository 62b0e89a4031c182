"""A least-recently-used cache bounded twice: by entries and by the total size of their texts.

    cache = TextLRU[str, DocumentNode](max_entries=4096, max_chars=512 * 1024)
    cache.put(text, document, size=len(text))
    document = cache.get(text)

A parsed GraphQL document takes memory in proportion to its text (~90 bytes of AST per
character of a small query), so a count alone would let a few thousand large documents hold
hundreds of megabytes; the character budget bounds what these caches keep, while thousands of
small documents (1,000 product queries with literal ids, say) still fit. What is worked out
per document (its measures, its plans: gateway.graphql.documents) hangs off the cached entry
and goes with it, so nothing else keeps a document alive.
"""

from __future__ import annotations

import collections
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

# Charged per entry on top of its text, so tiny texts cannot fill the cache for free.
ENTRY_OVERHEAD_CHARS = 64


class TextLRU(Generic[K, V]):
    def __init__(self, *, max_entries: int, max_chars: int) -> None:
        if max_entries < 1 or max_chars < 1:
            raise ValueError("need max_entries >= 1 and max_chars >= 1")
        self.max_entries = max_entries
        self.max_chars = max_chars
        self.chars = 0
        self._entries: collections.OrderedDict[K, tuple[V, int]] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries.move_to_end(key)
        return entry[0]

    def put(self, key: K, value: V, *, size: int) -> None:
        """Keep `value` (whose text is `size` characters), evicting the least recently used."""
        charge = size + ENTRY_OVERHEAD_CHARS
        if charge > self.max_chars:
            return  # would evict everything else and still not fit
        old = self._entries.pop(key, None)
        if old is not None:
            self.chars -= old[1]
        self._entries[key] = (value, charge)
        self.chars += charge
        while len(self._entries) > self.max_entries or self.chars > self.max_chars:
            _, (_, evicted) = self._entries.popitem(last=False)
            self.chars -= evicted
