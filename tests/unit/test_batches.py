"""Batcher: which batches concurrent calls become, and what each caller gets back."""

from __future__ import annotations

import asyncio

import pytest

from db_service.repositories.batches import Batcher


class Recorder:
    """A batch runner that records each batch and, while `gate` is closed, holds it open."""

    def __init__(self) -> None:
        self.batches: list[tuple[str, list[str]]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.started = asyncio.Event()
        self.failure: Exception | None = None
        self.finished: list[list[str]] = []

    async def run(self, key: str, requests: list[str]) -> list[str]:
        self.batches.append((key, list(requests)))
        self.started.set()
        await self.gate.wait()
        if self.failure is not None:
            raise self.failure
        self.finished.append(list(requests))
        return [f"{key}:{r}" for r in requests]


def _token(request: str) -> str | None:
    """Requests "a#1" and "a#2" share the token "a"; plain ones have none."""
    return request.split("#")[0] if "#" in request else None


def _batcher(recorder: Recorder, max_size: int = 64) -> Batcher[str, str, str]:
    return Batcher(recorder.run, max_size=max_size, token=_token)


async def _while_first_batch_in_flight(
    recorder: Recorder, batcher: Batcher[str, str, str]
) -> asyncio.Task[str]:
    """Submit "first" and hold its batch in the runner until the gate opens."""
    recorder.gate.clear()
    first = asyncio.create_task(batcher.submit("p", "first"))
    await asyncio.wait_for(recorder.started.wait(), timeout=5)
    return first


async def test_a_lone_call_goes_at_once_as_a_batch_of_one() -> None:
    recorder = Recorder()

    result = await _batcher(recorder).submit("p", "x")

    assert result == "p:x"
    assert recorder.batches == [("p", ["x"])]


async def test_calls_arriving_while_a_batch_runs_go_together_in_order() -> None:
    # given a batch in flight
    recorder = Recorder()
    batcher = _batcher(recorder)
    first = await _while_first_batch_in_flight(recorder, batcher)

    # when three more calls arrive, then the batch returns
    later = [asyncio.create_task(batcher.submit("p", r)) for r in ("a", "b", "c")]
    await asyncio.sleep(0)
    recorder.gate.set()

    # then they are the next batch, each caller with its own result
    assert await first == "p:first"
    assert await asyncio.gather(*later) == ["p:a", "p:b", "p:c"]
    assert recorder.batches == [("p", ["first"]), ("p", ["a", "b", "c"])]


async def test_keys_batch_apart() -> None:
    recorder = Recorder()
    batcher = _batcher(recorder)

    results = await asyncio.gather(batcher.submit("p", "a"), batcher.submit("q", "b"))

    assert results == ["p:a", "q:b"]
    assert sorted(recorder.batches) == [("p", ["a"]), ("q", ["b"])]


async def test_two_calls_with_one_token_never_share_a_batch() -> None:
    recorder = Recorder()
    batcher = _batcher(recorder)
    first = await _while_first_batch_in_flight(recorder, batcher)

    later = [asyncio.create_task(batcher.submit("p", r)) for r in ("k#1", "x", "k#2", "y")]
    await asyncio.sleep(0)
    recorder.gate.set()

    await asyncio.gather(first, *later)
    assert recorder.batches == [("p", ["first"]), ("p", ["k#1", "x", "y"]), ("p", ["k#2"])]


async def test_a_batch_takes_at_most_max_size_calls() -> None:
    recorder = Recorder()
    batcher = _batcher(recorder, max_size=2)
    first = await _while_first_batch_in_flight(recorder, batcher)

    later = [asyncio.create_task(batcher.submit("p", r)) for r in ("a", "b", "c")]
    await asyncio.sleep(0)
    recorder.gate.set()

    await asyncio.gather(first, *later)
    assert recorder.batches == [("p", ["first"]), ("p", ["a", "b"]), ("p", ["c"])]


async def test_a_failed_batch_fails_its_callers_and_the_next_batch_still_runs() -> None:
    # given a batch in flight that will fail, and a call queued behind it
    recorder = Recorder()
    batcher = _batcher(recorder)
    first = await _while_first_batch_in_flight(recorder, batcher)
    recorder.failure = RuntimeError("the database went away")
    queued = asyncio.create_task(batcher.submit("p", "a"))
    await asyncio.sleep(0)

    # when the first batch fails
    recorder.gate.set()
    with pytest.raises(RuntimeError):
        await first

    # then the queued call went as its own batch (which fails the same way here)
    with pytest.raises(RuntimeError):
        await queued
    assert recorder.batches == [("p", ["first"]), ("p", ["a"])]


async def test_a_caller_that_gives_up_does_not_stop_the_batch_of_the_others() -> None:
    # given a batch in flight with two calls queued behind it
    recorder = Recorder()
    batcher = _batcher(recorder)
    first = await _while_first_batch_in_flight(recorder, batcher)
    quitter = asyncio.create_task(batcher.submit("p", "quitter"))
    stayer = asyncio.create_task(batcher.submit("p", "stayer"))
    await asyncio.sleep(0)

    # when one of them is cancelled before its batch goes
    quitter.cancel()
    recorder.gate.set()

    # then the other still gets its result, and the cancelled one was never sent
    assert await stayer == "p:stayer"
    assert await first == "p:first"
    assert quitter.cancelled()
    assert recorder.batches == [("p", ["first"]), ("p", ["stayer"])]


async def test_cancelling_the_caller_of_a_running_batch_lets_the_batch_finish() -> None:
    recorder = Recorder()
    batcher = _batcher(recorder)
    first = await _while_first_batch_in_flight(recorder, batcher)
    other = asyncio.create_task(batcher.submit("p", "other"))
    await asyncio.sleep(0)

    first.cancel()
    recorder.gate.set()

    assert await other == "p:other"
    assert first.cancelled()
    assert recorder.finished == [["first"], ["other"]]


class RefusesBad(Recorder):
    """Fails any batch holding a request that starts with "bad", as a database refuses the
    one value of a statement it cannot store."""

    async def run(self, key: str, requests: list[str]) -> list[str]:
        if any(r.startswith("bad") for r in requests):
            self.batches.append((key, list(requests)))
            raise ValueError("numeric field overflow")
        return await super().run(key, requests)


async def test_an_isolated_failure_fails_only_the_request_that_causes_it() -> None:
    # given a batcher that isolates ValueError, and three calls queued behind a first batch
    recorder = RefusesBad()
    batcher = Batcher(recorder.run, max_size=64, token=_token, isolate=(ValueError,))
    first = await _while_first_batch_in_flight(recorder, batcher)
    queued = [asyncio.create_task(batcher.submit("p", r)) for r in ("a", "bad", "b")]
    await asyncio.sleep(0)

    # when they go as one batch, which fails on "bad"
    recorder.gate.set()
    assert await first == "p:first"
    results = await asyncio.gather(*queued, return_exceptions=True)

    # then the batch runs again one call at a time, in order, and only "bad" fails
    assert results[0] == "p:a"
    assert isinstance(results[1], ValueError)
    assert results[2] == "p:b"
    assert recorder.batches == [
        ("p", ["first"]),
        ("p", ["a", "bad", "b"]),
        ("p", ["a"]),
        ("p", ["bad"]),
        ("p", ["b"]),
    ]


async def test_a_failure_not_isolated_fails_the_whole_batch_at_once() -> None:
    # given a batcher that isolates ValueError only, and two calls queued behind a first batch
    recorder = Recorder()
    batcher = Batcher(recorder.run, max_size=64, token=_token, isolate=(ValueError,))
    first = await _while_first_batch_in_flight(recorder, batcher)
    queued = [asyncio.create_task(batcher.submit("p", r)) for r in ("a", "b")]
    await asyncio.sleep(0)

    # when the database goes away during the first batch and stays away
    recorder.failure = ConnectionError("the database went away")
    recorder.gate.set()
    results = await asyncio.gather(first, *queued, return_exceptions=True)

    # then each batch fails once, for all its callers: nothing is retried one by one
    assert all(isinstance(r, ConnectionError) for r in results)
    assert recorder.batches == [("p", ["first"]), ("p", ["a", "b"])]
