"""A finished future's exception taken, so that asyncio does not log it as never retrieved.

future.add_done_callback(retrieve)   # nobody may await it any longer
"""

from __future__ import annotations

import asyncio
from typing import Any


def retrieve(future: asyncio.Future[Any]) -> None:
    """Take `future`'s exception, if it has one (a done callback, or called once it is done)."""
    if not future.cancelled():
        future.exception()
