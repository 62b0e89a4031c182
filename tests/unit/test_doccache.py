"""TextLRU: bounded by entries and by characters, least recently used out first."""

from __future__ import annotations

from gateway.graphql.doccache import ENTRY_OVERHEAD_CHARS, TextLRU


def test_entries_are_bounded_and_the_least_recently_used_goes_first() -> None:
    cache: TextLRU[str, int] = TextLRU(max_entries=2, max_chars=10_000)
    cache.put("a", 1, size=1)
    cache.put("b", 2, size=1)
    assert cache.get("a") == 1  # now "b" is the least recently used
    cache.put("c", 3, size=1)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)
    assert len(cache) == 2


def test_characters_are_bounded_whatever_the_count() -> None:
    budget = 4 * (100 + ENTRY_OVERHEAD_CHARS)
    cache: TextLRU[int, str] = TextLRU(max_entries=1000, max_chars=budget)
    for key in range(10):
        cache.put(key, "x" * 100, size=100)
        assert cache.chars <= budget
    assert [k for k in range(10) if cache.get(k) is not None] == [6, 7, 8, 9]


def test_a_text_larger_than_the_whole_budget_is_not_kept() -> None:
    cache: TextLRU[str, str] = TextLRU(max_entries=10, max_chars=1000)
    cache.put("small", "s", size=10)
    cache.put("huge", "h", size=5000)
    assert (cache.get("huge"), cache.get("small")) == (None, "s")


def test_putting_a_key_again_replaces_its_charge() -> None:
    cache: TextLRU[str, str] = TextLRU(max_entries=10, max_chars=1000)
    cache.put("k", "v1", size=100)
    cache.put("k", "v2", size=100)
    assert (cache.get("k"), len(cache), cache.chars) == ("v2", 1, 100 + ENTRY_OVERHEAD_CHARS)
