"""OutboxRelay's pace: an empty outbox is looked at every LOG_FLUSH_INTERVAL_S, never faster
than IDLE_MIN_S."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from db_service.outbox import Outbox
from db_service.relay import IDLE_MIN_S, OutboxRelay


class EmptyOutbox:
    """Stands for OutboxRepository over an outbox that stays empty: notes when it is looked at."""

    def __init__(self) -> None:
        self.looks: list[float] = []
        self.looked = asyncio.Event()

    async def any(self) -> bool:
        self.looks.append(asyncio.get_running_loop().time())
        self.looked.set()
        return False

    async def count(self, *, at_most: int) -> int:
        return 0


class Channel:
    async def close(self) -> None:
        pass


async def _gaps_between_looks(idle_s: float, looks: int) -> list[float]:
    repo = EmptyOutbox()
    relay = OutboxRelay(
        Outbox(), cast(Any, repo), cast(Any, None), cast(Any, Channel()), idle_s=idle_s
    )
    relay.start()
    try:
        async with asyncio.timeout(10):
            while len(repo.looks) < looks:
                repo.looked.clear()
                await repo.looked.wait()
    finally:
        await relay.stop()
    return [later - earlier for earlier, later in zip(repo.looks, repo.looks[1:], strict=False)]


async def test_an_empty_outbox_is_looked_at_once_per_flush_interval() -> None:
    # given a relay told the shippers' flush interval (LOG_FLUSH_INTERVAL_S), here 0.4 s,
    # and an outbox with nothing in it; when it has looked three times
    gaps = await _gaps_between_looks(0.4, 3)

    # then it waited the interval between looks: an outbox record waits no longer than the
    # service's other records, and an idle relay costs PostgreSQL a query per interval only
    assert gaps
    assert all(gap >= 0.38 for gap in gaps), gaps


@pytest.mark.parametrize("idle_s", [0.0, 0.001])
async def test_a_flush_interval_of_zero_does_not_make_the_relay_spin(idle_s: float) -> None:
    # given LOG_FLUSH_INTERVAL_S=0 (ship at once), which the shippers take as it is; when the
    # relay looks at an empty outbox
    gaps = await _gaps_between_looks(idle_s, 3)

    # then it still pauses between looks, rather than query PostgreSQL in a loop
    assert all(gap >= IDLE_MIN_S * 0.95 for gap in gaps), gaps
