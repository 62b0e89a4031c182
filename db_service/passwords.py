"""Argon2id password hashing, off the event loop and bounded.

Hashing is deliberately slow and CPU-bound, so it runs in worker threads, and a semaphore caps
how many run at once: a burst of registrations or logins queues here instead of starving the
event loop or exhausting memory.
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class Passwords:
    """Hash and verify passwords with Argon2id, at most `concurrency` at a time."""

    def __init__(self, concurrency: int) -> None:
        self._hasher = PasswordHasher()  # argon2-cffi defaults: Argon2id, RFC 9106 low-memory
        self._slots = asyncio.Semaphore(concurrency)
        # Verified against when the user does not exist, so unknown users cost the same time.
        self._dummy_hash = self._hasher.hash("not-a-real-password-used-for-timing")

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """True when `password` matches; always does the full work, even with no stored hash."""
        async with self._slots:
            return await asyncio.to_thread(self._verify, password_hash, password)

    def _verify(self, password_hash: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash or self._dummy_hash, password) and (
                password_hash is not None
            )
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
