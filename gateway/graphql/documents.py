"""The documents the pipeline has seen pass: parsed, validated, and what hangs off each.

    documents = Documents(max_entries=4096, max_chars=512 * 1024)
    prepared = documents.get(text)            # None: parse and validate it first
    documents.put(Prepared.of(text, document))

All of it is the pipeline's own bounded state: documents by text (bounded in entries and in
characters, gateway.graphql.doccache), and per document the measures of its operations by the
variables that change them (at most MEASURES_PER_DOCUMENT) and the compiled plan of each
operation (bounded by the operations a document can hold, which the token limit bounds).

What hangs off a document lives exactly as long as the document does in the cache. The
measures were once a cache of their own, keyed by document and bounded by count only: it held
the last 1,000 documents measured alive, those the document cache had evicted or never taken
(refused by validation, or larger than its whole budget) among them: 1,000 distinct documents
of 57 KB (1,900 fields each, refused for an unknown field) took 1.2 GB of the gateway's memory.

The parser leaves its tokens in a doubly linked list (each token's `next` and `prev`) that the
nodes' locations hold: a reference cycle as long as the document. `unlink_tokens` cuts it, so an
evicted document is freed by reference counting at once, also when gateway.heap has frozen it
(a frozen cycle waits for the next full refreeze: until 2026-12-07 each evicted document left
its tokens there, and in a simulation of a flood of distinct documents, a cache of 1,000 and
1,500 new ones between checks, every fourth check was a full refreeze for them).
Errors take their locations from `loc.source` and `loc.start`, not from the list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from graphql import DocumentNode, OperationDefinitionNode, Token

from gateway.graphql.analysis import Measure, first_variables
from gateway.graphql.doccache import TextLRU
from gateway.graphql.limits import MeasureKey

# Measures kept per document: one per operation and `first` values a client sends. A client
# paging with many different `first` values costs a new measure (linear in the document) for
# the ones forgotten.
MEASURES_PER_DOCUMENT = 16


def unlink_tokens(document: DocumentNode) -> None:
    """Cut the parser's list of tokens, which only parsing walks (module docstring)."""
    token: Token | None = document.loc.start_token if document.loc is not None else None
    while token is not None:
        following = token.next
        token.prev = token.next = None
        token = following


@dataclass(eq=False, slots=True)
class Prepared:
    """A document that parsed and validated (validation depends on neither the variables nor
    which of its operations runs; the limits may, through `first` variables)."""

    text: str
    document: DocumentNode
    operations: list[OperationDefinitionNode]
    # One operation and no `first` variable: within the limits once means always.
    fixed_measure: bool
    # Operation name (None: the first) → its compiled plan, or None where it has none.
    plans: dict[str | None, Any] = field(default_factory=dict)
    # What gateway.graphql.limits measured of its operations, by what a measure depends on.
    measures: dict[MeasureKey, Measure | None] = field(default_factory=dict)

    @classmethod
    def of(cls, text: str, document: DocumentNode) -> Prepared:
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        fixed = len(operations) == 1 and not first_variables(document)
        return cls(text, document, operations, fixed)

    def measure(self, key: MeasureKey) -> tuple[bool, Measure | None]:
        """(known, measure) of an operation of this document under `key`."""
        measures = self.measures
        return (True, measures[key]) if key in measures else (False, None)

    def remember_measure(self, key: MeasureKey, measure: Measure | None) -> None:
        """Keep `measure` (the oldest of the document's measures goes when it has
        MEASURES_PER_DOCUMENT)."""
        measures = self.measures
        if key not in measures and len(measures) >= MEASURES_PER_DOCUMENT:
            del measures[next(iter(measures))]
        measures[key] = measure


class Documents:
    def __init__(self, *, max_entries: int, max_chars: int) -> None:
        self._by_text: TextLRU[str, Prepared] = TextLRU(
            max_entries=max_entries, max_chars=max_chars
        )

    def __len__(self) -> int:
        return len(self._by_text)

    def get(self, text: str) -> Prepared | None:
        return self._by_text.get(text)

    def put(self, prepared: Prepared) -> None:
        self._by_text.put(prepared.text, prepared, size=len(prepared.text))
