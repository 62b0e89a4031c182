"""bench.logfloor on a real broker and logging_service: both call sizes are acknowledged in
full (it raises otherwise), and the records cost logging_service CPU (a broken measurement reads
zero or fails)."""

from __future__ import annotations

import math

from bench.logfloor import measure


def test_logging_service_and_the_broker_are_each_costed_per_call_and_per_record() -> None:
    # when a second of calls of each size is timed
    floors = measure(records=1000, rate=20, seconds=1.0)

    # then both processes were measured, and logging_service's records cost it CPU
    assert [f.process for f in floors] == ["logging_service", "broker"]
    assert all(math.isfinite(f.per_call_us) and math.isfinite(f.per_record_us) for f in floors)
    assert floors[0].per_record_us > 0
