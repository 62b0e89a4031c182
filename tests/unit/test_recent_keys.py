"""RecentKeys: repeats are found, memory is bounded and forgets the oldest first."""

from __future__ import annotations

import pytest

from plumbing.recent import RecentKeys


def test_a_key_is_new_once() -> None:
    seen = RecentKeys()
    assert [seen.first_time(k) for k in ("a", "b", "a", "c", "b")] == [
        True,
        True,
        False,
        True,
        False,
    ]


def test_an_empty_key_is_always_new() -> None:
    seen = RecentKeys()
    assert [seen.first_time("") for _ in range(3)] == [True, True, True]


def test_memory_is_bounded_and_forgets_the_oldest_first() -> None:
    seen = RecentKeys(max_keys=2)
    for key in ("a", "b", "c"):
        seen.first_time(key)
    assert seen.first_time("a") is True  # forgotten
    assert seen.first_time("c") is False


def test_at_least_one_key_is_kept() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RecentKeys(max_keys=0)
