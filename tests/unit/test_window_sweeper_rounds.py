"""The rate-limit window sweeper keeps sweeping whatever one round raised."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from db_service.sweeper import WindowSweeper


class _Pool:
    """Answers the sweeper's DELETE: a failure nobody expected first, then "nothing expired"."""

    def __init__(self) -> None:
        self.calls = 0
        self.swept_again = asyncio.Event()

    async def execute(self, query: str, *args: Any) -> str:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("a bug in one round")
        self.swept_again.set()
        return "DELETE 0"


async def test_a_round_that_fails_unexpectedly_does_not_end_the_sweeper(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # given a sweeper whose first round fails with an error it does not know
    pool = _Pool()
    sweeper = WindowSweeper(pool, {"login_attempts": 60}, interval_s=0.01)  # type: ignore[arg-type]
    caplog.set_level(logging.ERROR, logger="db_service.sweeper")

    # when it runs
    sweeper.start()
    try:
        # then it sweeps again in the next round (else expired windows would pile up for ever)
        await asyncio.wait_for(pool.swept_again.wait(), timeout=5)
    finally:
        await sweeper.stop()

    # and the failure was logged with its traceback
    assert any(r.exc_info and isinstance(r.exc_info[1], RuntimeError) for r in caplog.records)
