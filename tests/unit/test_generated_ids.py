"""Ids made per record and per request: 32 hex digits, never repeated."""

from __future__ import annotations

import re

from gateway.middleware import new_request_id
from logging_service.client import LogShipper


def _ids(shipper: LogShipper, count: int) -> list[str]:
    return [
        shipper.record(
            kind="rest",
            operation="GET /",
            user="anonymous",
            outcome="ok",
            duration_ms=1.0,
            request_id="r",
        )
        for _ in range(count)
    ]


def test_event_ids_are_32_hex_digits_and_unique() -> None:
    first = LogShipper("127.0.0.1:9", service="gateway")
    second = LogShipper("127.0.0.1:9", service="gateway")
    ids = _ids(first, 1000) + _ids(second, 1000)
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == 2000
    assert ids[0][:16] != ids[1000][:16]  # a random prefix per shipper
    assert first.stats.queued == 1000  # every one buffered


def test_request_ids_made_by_the_gateway_are_32_hex_digits_and_unique() -> None:
    ids = [new_request_id() for _ in range(10_000)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == len(ids)
