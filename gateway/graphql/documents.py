"""The documents the pipeline has seen pass: parsed, validated, and what hangs off each.

    documents = Documents(max_entries=4096, max_chars=512 * 1024)
    prepared = documents.get(text)            # None: parse and validate it first
    documents.put(Prepared.of(text, document))

All of it is the pipeline's own bounded state: documents by text (bounded in entries and in
characters, gateway.graphql.doccache), the measures of their operations by the variables that
change them (bounded in entries), and per document the compiled plan of each operation
(bounded by the operations a document can hold, which the token limit bounds).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from graphql import DocumentNode, OperationDefinitionNode

from gateway.graphql.analysis import Measure, first_variables
from gateway.graphql.doccache import TextLRU
from gateway.graphql.limits import MeasureKey


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

    @classmethod
    def of(cls, text: str, document: DocumentNode) -> Prepared:
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        fixed = len(operations) == 1 and not first_variables(document)
        return cls(text, document, operations, fixed)


class Documents:
    def __init__(self, *, max_entries: int, max_chars: int, max_measures: int = 1000) -> None:
        self._by_text: TextLRU[str, Prepared] = TextLRU(
            max_entries=max_entries, max_chars=max_chars
        )
        self._measures: OrderedDict[tuple[Prepared, MeasureKey], Measure | None] = OrderedDict()
        self._max_measures = max_measures

    def __len__(self) -> int:
        return len(self._by_text)

    def get(self, text: str) -> Prepared | None:
        return self._by_text.get(text)

    def put(self, prepared: Prepared) -> None:
        self._by_text.put(prepared.text, prepared, size=len(prepared.text))

    def measure(self, prepared: Prepared, key: MeasureKey) -> tuple[bool, Measure | None]:
        """(known, measure) of `prepared`'s operation under `key`."""
        entry = (prepared, key)
        if entry not in self._measures:
            return False, None
        self._measures.move_to_end(entry)
        return True, self._measures[entry]

    def remember_measure(
        self, prepared: Prepared, key: MeasureKey, measure: Measure | None
    ) -> None:
        self._measures[(prepared, key)] = measure
        while len(self._measures) > self._max_measures:
            self._measures.popitem(last=False)
