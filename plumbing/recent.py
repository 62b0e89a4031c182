"""The keys seen lately, for readers that drop repeats.

Log records are delivered at least once: a batch whose acknowledgement was lost is sent again,
and its records reach the topic twice with the same `event_id`. A reader that prints or
forwards the topic (the console tail, the `logs` subscription) remembers the last `max_keys`
ids and skips a record it has already shown; repeats come close together (within a re-sent
batch, at most a few thousand records), so a bounded memory finds them.

    seen = RecentKeys()
    if seen.first_time(record.event_id):
        show(record)
"""

from __future__ import annotations

from collections import OrderedDict

MAX_KEYS = 20_000


class RecentKeys:
    """At most `max_keys` keys, the oldest forgotten first."""

    def __init__(self, max_keys: int = MAX_KEYS) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self._keys: OrderedDict[str, None] = OrderedDict()
        self._max_keys = max_keys

    def first_time(self, key: str) -> bool:
        """Whether `key` is new (then it is remembered). An empty key is always new: a record
        without an id cannot be told from another."""
        if not key:
            return True
        if key in self._keys:
            return False
        self._keys[key] = None
        if len(self._keys) > self._max_keys:
            self._keys.popitem(last=False)
        return True
