"""db_service.passwords: at most `concurrency` hashes run at once, cancelled callers included.

A gRPC deadline or a client that goes away cancels the handler while its Argon2 thread runs on;
the next hash must still wait for that thread, or a flood of logins that time out would run up
to the thread pool's size of ~64 MiB hashes at once instead of HASH_CONCURRENCY.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

import pytest
from argon2 import PasswordHasher

from db_service.passwords import Passwords


class GatedHasher(PasswordHasher):
    """Each hash after the first (the dummy one) blocks until its gate opens; notes starts."""

    def __init__(self) -> None:
        super().__init__()
        self.gates: list[threading.Event] = []
        self.started: list[threading.Event] = []
        self.running = 0
        self.peak = 0
        self._lock = threading.Lock()
        self._calls = 0

    def expect(self, count: int) -> None:
        self.gates = [threading.Event() for _ in range(count)]
        self.started = [threading.Event() for _ in range(count)]
        self._calls = 0

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        if not self.gates:
            return "dummy"
        with self._lock:
            n, self._calls = self._calls, self._calls + 1
            self.running += 1
            self.peak = max(self.peak, self.running)
        self.started[n].set()
        try:
            assert self.gates[n].wait(10), "the test never opened this hash's gate"
            return f"hash-{n}"
        finally:
            with self._lock:
                self.running -= 1


async def _wait(event: threading.Event, within: float) -> bool:
    return await asyncio.to_thread(event.wait, within)


async def test_a_cancelled_hash_keeps_its_slot_until_its_thread_ends() -> None:
    # given one slot, taken by a hash whose caller is cancelled while its thread runs
    hasher = GatedHasher()
    passwords = Passwords(1, hasher=hasher)
    hasher.expect(2)
    first = asyncio.create_task(passwords.hash("password-1"))
    assert await _wait(hasher.started[0], 5)
    first.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await first

    # when another hash is asked for
    second = asyncio.create_task(passwords.hash("password-2"))

    # then it waits for the first thread to end, and runs once it has
    assert not await _wait(hasher.started[1], 0.5), "the second hash started beside the first"
    hasher.gates[0].set()
    assert await _wait(hasher.started[1], 5)
    hasher.gates[1].set()
    assert await asyncio.wait_for(second, 5) == "hash-1"
    assert hasher.peak == 1


async def test_a_hash_that_fails_frees_its_slot() -> None:
    # given one slot and a hash that raises
    class Failing(PasswordHasher):
        calls = 0

        def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
            Failing.calls += 1
            if Failing.calls == 2:
                raise MemoryError("no room for Argon2's memory")
            return "ok"

    passwords = Passwords(1, hasher=Failing())

    # when it fails, the error reaches the caller, and the next hash still gets the slot
    with pytest.raises(MemoryError):
        await passwords.hash("password-1")
    assert Failing.calls == 2
    assert await asyncio.wait_for(passwords.hash("password-2"), 5) == "ok"
