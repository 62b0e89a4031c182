"""Which request ids db_service records a call under: those of its `x-request-id` metadata, one
per entry or several in one entry joined by commas (the gateway's coalesced reads)."""

from __future__ import annotations

import re

from db_service.interceptors import MAX_REQUEST_IDS, request_ids_of


def test_ids_joined_by_commas_in_one_entry_are_each_a_request() -> None:
    metadata = (("x-request-id", "r1,r2,r3"),)

    assert request_ids_of(metadata) == ["r1", "r2", "r3"]


def test_spaces_around_the_commas_are_not_part_of_an_id() -> None:
    metadata = (("x-request-id", "r1, r2 ,\tr3"),)

    assert request_ids_of(metadata) == ["r1", "r2", "r3"]


def test_ids_in_several_entries_and_joined_ones_keep_their_order_each_once() -> None:
    metadata = (
        ("x-request-id", "a,b"),
        ("authorization", "Bearer t"),
        ("x-request-id", "c"),
        ("x-request-id", b"b,d"),
    )

    assert request_ids_of(metadata) == ["a", "b", "c", "d"]


def test_empty_overlong_and_unprintable_ids_are_left_out() -> None:
    metadata = (("x-request-id", ",ok,," + "r" * 129 + ",bad\x07,fine"),)

    assert request_ids_of(metadata) == ["ok", "fine"]


def test_at_most_max_request_ids_are_taken() -> None:
    metadata = (("x-request-id", ",".join(f"r{n}" for n in range(MAX_REQUEST_IDS + 50))),)

    assert request_ids_of(metadata) == [f"r{n}" for n in range(MAX_REQUEST_IDS)]


def test_a_call_without_an_id_gets_a_new_one() -> None:
    (made,) = request_ids_of((("x-request-id", ","),))

    assert re.fullmatch(r"[0-9a-f]{32}", made)
