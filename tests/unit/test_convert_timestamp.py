"""db_service's datetime → protobuf Timestamp conversion agrees with protobuf's own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from db_service.servicers.convert import timestamp

CASES = [
    datetime(2026, 11, 24, 7, 30, 15, 123456, tzinfo=UTC),
    datetime(2026, 11, 24, 15, 30, 15, 999999, tzinfo=timezone(timedelta(hours=8))),
    datetime(2026, 11, 24, 7, 30, 15),  # naive: UTC
    datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=UTC),  # before the epoch
    datetime(1970, 1, 1, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
]


@pytest.mark.parametrize("value", CASES, ids=str)
def test_timestamp_matches_from_datetime(value: datetime) -> None:
    expected = Timestamp()
    expected.FromDatetime(value)
    assert timestamp(value) == expected
