"""Argon2id password hashing, off the event loop and bounded.

Hashing is deliberately slow and CPU-bound, so it runs in worker threads, and a semaphore caps
how many run at once: a burst of registrations or logins queues here instead of starving the
event loop or exhausting memory. A slot is held until its thread is done, even when the call
that asked for the hash is cancelled first (a deadline that passed, a client gone): the thread
cannot be stopped, so releasing the slot early would let the next hash start beside it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

T = TypeVar("T")


def argon2id(*, time_cost: int, memory_kib: int) -> PasswordHasher:
    """Argon2id at this cost (PASSWORD_HASH_TIME_COST, PASSWORD_HASH_MEMORY_KIB); the rest is
    argon2-cffi's default (4 lanes, 16-byte salt, 32-byte hash). A stored hash keeps its own
    parameters, so changing the cost leaves every existing password verifiable."""
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib)


class Passwords:
    """Hash and verify passwords with Argon2id, at most `concurrency` at a time."""

    def __init__(self, concurrency: int, *, hasher: PasswordHasher | None = None) -> None:
        # argon2-cffi's defaults: Argon2id, RFC 9106 low-memory.
        self._hasher = hasher if hasher is not None else PasswordHasher()
        self._slots = asyncio.Semaphore(concurrency)
        # Verified against when the user does not exist, so unknown users cost the same time.
        self._dummy_hash = self._hasher.hash("not-a-real-password-used-for-timing")

    async def hash(self, password: str) -> str:
        return await self._in_slot(self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """True when `password` matches; always does the full work, even with no stored hash."""
        return await self._in_slot(self._verify, password_hash, password)

    async def _in_slot(self, work: Callable[..., T], *args: object) -> T:
        """`work(*args)` in a thread once a slot is free; the slot is freed when it ends."""
        await self._slots.acquire()
        try:
            done = asyncio.ensure_future(asyncio.to_thread(work, *args))
        except BaseException:
            self._slots.release()
            raise
        done.add_done_callback(self._release)
        # A cancelled caller stops waiting here; the thread, and its slot, run to the end.
        return await asyncio.shield(done)

    def _release(self, done: asyncio.Future[Any]) -> None:
        self._slots.release()
        if not done.cancelled():
            done.exception()  # retrieved: nobody may be waiting any longer

    def _verify(self, password_hash: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash or self._dummy_hash, password) and (
                password_hash is not None
            )
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
