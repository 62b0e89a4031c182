"""The disk spool on real files: records come back in order, survive a reopen until
acknowledged, acknowledged segments are deleted, a torn tail is cut, the size bound holds, a
burst waiting for disk shares one fsync, and a directory has one user at a time."""

from __future__ import annotations

import asyncio
import errno
import os
import random
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from logging_service import spool as spool_module
from logging_service.buffers import Frame
from logging_service.segments import FRAME_OVERHEAD, encode_frame, encode_frames, parse_frames
from logging_service.spool import DiskSpool, SpoolInUse


def spool(directory: Path, **overrides: int | float) -> DiskSpool:
    options: dict[str, int | float] = {
        "max_bytes": 1 << 30,
        "sync_interval_s": 0.01,
        "max_pending": 10_000,
    }
    options.update(overrides)
    return DiskSpool(directory, **options)  # type: ignore[arg-type]


async def fill(s: DiskSpool, count: int, start: int = 0) -> list[bytes]:
    payloads = [f"record-{n:05d}".encode() for n in range(start, start + count)]
    for n, payload in enumerate(payloads):
        assert s.append(payload, 1_700_000_000.0 + n)
    await s.settled()
    return payloads


async def read_all(s: DiskSpool, limit: int = 1000) -> list[Frame]:
    frames: list[Frame] = []
    while batch := await s.read(limit):
        frames += batch
    return frames


def segments(directory: Path) -> list[str]:
    """The segment files of the spool at `directory` (a lone process locks its slot-0)."""
    return sorted(p.name for p in (directory / "slot-0").glob("*.seg"))


async def until(predicate: Callable[[], bool], message: str, within: float = 5.0) -> None:
    """Poll the writer thread's effect on disk until it shows, or fail at the deadline."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out: {message}")
        await asyncio.sleep(0.01)


@pytest.fixture
async def opened(tmp_path: Path) -> AsyncIterator[DiskSpool]:
    s = spool(tmp_path / "spool")
    await s.open()
    try:
        yield s
    finally:
        await s.close()


def test_frames_encoded_together_are_each_frame_encoded_alone_and_parse_back() -> None:
    rng = random.Random(7)
    frames = [
        Frame(n, rng.choice([0.0, -1.5, 1.7e9 + rng.random()]), rng.randbytes(rng.randrange(300)))
        for n in range(200)
    ]

    data = encode_frames(frames)

    assert data == b"".join(encode_frame(f.payload, f.ts) for f in frames)
    assert parse_frames(data, 1000) == ([(f.ts, f.payload) for f in frames], len(data), False)


async def test_records_come_back_in_order_with_their_time(opened: DiskSpool) -> None:
    payloads = await fill(opened, 300)

    frames = await read_all(opened, limit=128)

    assert [f.payload for f in frames] == payloads
    assert [f.seq for f in frames] == list(range(1, 301))
    assert frames[5].ts == 1_700_000_005.0


async def test_unacknowledged_records_are_read_again_after_a_reopen(tmp_path: Path) -> None:
    # given 100 records of which the first 40 were acknowledged
    first = spool(tmp_path)
    await first.open()
    payloads = await fill(first, 100)
    frames = await read_all(first)
    first.ack(frames[39])
    cursor = tmp_path / "slot-0" / "acked"
    await until(lambda: cursor.read_text().strip() == f"{40:020d}", "acknowledgement not noted")
    await first.close()

    # when the directory is opened again
    second = spool(tmp_path)
    await second.open()
    again = await read_all(second)
    await second.close()

    # then the other 60 come back first, unchanged and numbered as before
    assert [f.payload for f in again] == payloads[40:]
    assert [f.seq for f in again] == list(range(41, 101))


async def test_a_segment_is_deleted_once_all_of_it_is_acknowledged(tmp_path: Path) -> None:
    s = spool(tmp_path, segment_bytes=400)
    await s.open()
    try:
        for n in range(10):  # ten turns of ten records: a segment each (~300 bytes)
            await fill(s, 10, start=10 * n)
        assert len(segments(tmp_path)) == 10
        frames = await read_all(s)

        s.ack(frames[44])  # segments 1-4 wholly, the fifth half
        await until(lambda: len(segments(tmp_path)) == 6, "acknowledged segments kept")
        left = segments(tmp_path)
    finally:
        await s.close()

    assert left == [f"{seq:020d}.seg" for seq in range(41, 101, 10)]


async def test_a_torn_record_at_the_end_is_cut_off_when_reopened(tmp_path: Path) -> None:
    s = spool(tmp_path)
    await s.open()
    payloads = await fill(s, 5)
    await s.close()
    # a crash in the middle of a write: half a frame after the last whole one
    (last,) = segments(tmp_path)
    with (tmp_path / "slot-0" / last).open("ab") as f:
        f.write(encode_frame(b"half-written", 1.0)[:10])

    again = spool(tmp_path)
    await again.open()
    frames = await read_all(again)
    more = await fill(again, 1, start=5)
    frames += await read_all(again)
    await again.close()

    assert [f.payload for f in frames] == payloads + more


async def test_records_beyond_the_size_bound_are_refused(tmp_path: Path) -> None:
    frame_size = len(encode_frame(b"record-00000", 0.0))
    s = spool(tmp_path, max_bytes=10 * frame_size)
    await s.open()
    try:
        accepted = [s.append(f"record-{n:05d}".encode(), 0.0) for n in range(15)]
        await s.settled()
        frames = await read_all(s)
        s.ack(frames[-1])
        await until(lambda: not segments(tmp_path), "the acknowledged segment was kept")
        after = s.append(b"record-99999", 0.0)
    finally:
        await s.close()

    assert accepted == [True] * 10 + [False] * 5
    assert after, "acknowledged records free their space"


class _SlowDisk(DiskSpool):
    """A spool whose writer stops inside its write until released."""

    def __init__(self, directory: Path, **options: int | float) -> None:
        super().__init__(directory, **options)  # type: ignore[arg-type]
        self.writing = threading.Event()
        self.release = threading.Event()

    def _write(self, data: bytes, frames: list[Frame]) -> None:
        self.writing.set()
        self.release.wait(10)
        super()._write(data, frames)


async def test_the_size_bound_holds_while_the_writer_is_writing(tmp_path: Path) -> None:
    # given a spool full to its bound, whose writer has taken the records and is writing them
    frame_size = len(encode_frame(b"record-00000", 0.0))
    s = _SlowDisk(tmp_path, max_bytes=10 * frame_size, sync_interval_s=0.01, max_pending=10_000)
    await s.open()
    try:
        accepted = [s.append(f"record-{n:05d}".encode(), 0.0) for n in range(10)]
        await until(s.writing.is_set, "the writer never started its write")

        # when one more record comes
        more = s.append(b"record-99999", 0.0)
    finally:
        s.release.set()
        await s.close()

    # then it is refused: the records being written still take their room
    assert accepted == [True] * 10
    assert more is False


class _FullDisk(DiskSpool):
    """A spool on a disk that refuses writes while `full`, and reports `free` bytes of room."""

    def __init__(self, directory: Path, **options: int | float) -> None:
        super().__init__(directory, **options)  # type: ignore[arg-type]
        self.full = False
        self.free = 0

    def _write(self, data: bytes, frames: list[Frame]) -> None:
        if self.full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        super()._write(data, frames)

    def _free_bytes(self) -> int:
        return self.free


async def test_a_full_disk_stays_degraded_until_the_refused_turn_would_fit(
    tmp_path: Path,
) -> None:
    # given a spool whose disk refused a turn of 100 records
    s = _FullDisk(tmp_path, max_bytes=1 << 30, sync_interval_s=0.01, max_pending=10_000)
    await s.open()
    try:
        s.full = True
        await fill(s, 100)
        refused = s.stats()

        # when a single record then squeezes into the little room left
        s.full, s.free = False, 100
        await fill(s, 1, start=100)
        squeezed = s.stats()

        # and when room is made (acknowledged segments deleted, say)
        s.free = 1 << 20
        await fill(s, 1, start=101)
        roomy = s.stats()
    finally:
        await s.close()

    # then the spool reports itself degraded until the refused turn would fit again
    assert refused.degraded.startswith("cannot write")
    assert refused.lost == 100
    assert squeezed.degraded == refused.degraded, "one small write ended a full disk's report"
    assert roomy.degraded == ""


async def test_the_free_space_a_full_disk_waits_for_is_read_from_the_real_filesystem(
    opened: DiskSpool,
) -> None:
    # given a spool that has written a segment on a disk with room
    await fill(opened, 3)

    # then the room it would wait for after a full disk is read from that disk, not zero
    assert opened._free_bytes() > 0


async def test_a_burst_waiting_for_disk_shares_one_fsync(tmp_path: Path) -> None:
    # given a spool whose timer alone would fsync only once a minute
    s = spool(tmp_path, sync_interval_s=60)
    await s.open()
    try:
        before = s.syncs

        # when 200 requests each record and wait for their record to be on disk
        async def request(n: int) -> None:
            s.append(f"record-{n}".encode(), 0.0)
            await s.settled()

        await asyncio.wait_for(asyncio.gather(*(request(n) for n in range(200))), 10)

        # then they were answered within seconds, by a handful of fsyncs, not one each
        assert 1 <= s.syncs - before <= 3
        assert len(await read_all(s)) == 200
    finally:
        await s.close()


async def test_processes_sharing_a_directory_each_lock_a_slot_of_their_own(
    opened: DiskSpool,
) -> None:
    # given a spool open on a directory; when a second one opens the same directory
    other = spool(opened.base)
    await other.open()
    try:
        # then it writes to a slot of its own, never to the first one's
        assert (opened.directory.name, other.directory.name) == ("slot-0", "slot-1")
    finally:
        await other.close()


async def test_a_directory_whose_every_slot_is_held_is_refused(opened: DiskSpool) -> None:
    other = spool(opened.base, max_slots=1)

    with pytest.raises(SpoolInUse, match="are in use by other processes"):
        await other.open()


async def test_a_directory_that_cannot_be_created_raises_os_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")

    with pytest.raises(NotADirectoryError):
        await spool(blocker / "spool").open()


async def test_records_just_written_are_handed_over_without_reading_the_disk(
    tmp_path: Path,
) -> None:
    # given records written by the writer, and their segment files emptied behind its back
    s = spool(tmp_path)
    await s.open()
    try:
        payloads = await fill(s, 300)
        for path in (tmp_path / "slot-0").glob("*.seg"):
            path.write_bytes(b"")

        # when the sender reads them
        frames = await read_all(s, limit=128)
    finally:
        await s.close()

    # then every one comes from memory, in order
    assert [f.payload for f in frames] == payloads
    assert s.read_back == 0


async def test_records_beyond_the_memory_bound_are_read_back_from_disk(tmp_path: Path) -> None:
    # given a sender held up while 300 records are written, and memory for 50 of them
    s = spool(tmp_path, memory_records=50)
    await s.open()
    try:
        payloads = await fill(s, 300)

        # when it reads again
        frames = await read_all(s, limit=128)
    finally:
        await s.close()

    # then it gets all of them in order: the oldest 250 from disk, the rest from memory
    assert [f.payload for f in frames] == payloads
    assert [f.seq for f in frames] == list(range(1, 301))
    assert s.read_back == 250


async def test_what_the_sender_took_frees_the_memory_it_held(tmp_path: Path) -> None:
    # given a spool with memory for about 5 turns of 100 records (12-byte payloads)
    s = spool(tmp_path, memory_bytes=7_000)
    await s.open()
    try:
        # when 20 turns are written and each is read before the next
        for turn in range(20):
            payloads = await fill(s, 100, start=turn * 100)
            frames = await read_all(s, limit=64)
            assert [f.payload for f in frames] == payloads
            s.ack(frames[-1])
    finally:
        await s.close()

    # then every one came from memory: what was read no longer counts against the bound
    assert s.read_back == 0


@pytest.mark.parametrize("memory", [37, 10_000])
@pytest.mark.parametrize("seed", range(8))
async def test_memory_and_disk_hand_out_the_same_records(
    tmp_path: Path, seed: int, memory: int
) -> None:
    """Differential: the same appends, reads, acknowledgements, failed writes and reopens on a
    spool that reads from memory (with a small bound, so it also falls back to disk, or with
    room for all) and on one that always reads its files give the same frames."""
    rng = random.Random(seed)
    steps = [(rng.choice("aarrrkcf"), rng.randint(1, 80)) for _ in range(40)]

    def new_spool(directory: Path, memory_records: int) -> _FullDisk:
        options = {"max_bytes": 1 << 30, "sync_interval_s": 0.01, "max_pending": 10_000}
        return _FullDisk(directory, memory_records=memory_records, **options)

    async def run(directory: Path, memory_records: int) -> list[tuple[int, float, bytes]]:
        s = new_spool(directory, memory_records)
        await s.open()
        seen: list[Frame] = []
        made = 0
        try:
            for op, n in steps:
                if op == "a":
                    for _ in range(n):
                        s.append(f"record-{made:05d}".encode(), 1_700_000_000.0 + made)
                        made += 1
                    await s.settled()
                elif op == "r":  # n records, however many reads that takes
                    wanted = len(seen) + n
                    while len(seen) < wanted and (batch := await s.read(wanted - len(seen))):
                        seen += batch
                elif op == "k" and seen:
                    s.ack(seen[-1])
                elif op == "c":  # a restart: what is unacknowledged comes again
                    await s.close()
                    s = new_spool(directory, memory_records)
                    await s.open()
                elif op == "f":  # a turn the disk refuses: its records are lost, a gap
                    s.full = True
                    for _ in range(n):
                        s.append(f"lost-{made:05d}".encode(), 1_700_000_000.0 + made)
                        made += 1
                    await s.settled()
                    s.full = False
            seen += await read_all(s)
        finally:
            await s.close()
        return [(f.seq, f.ts, f.payload) for f in seen]

    from_memory = await run(tmp_path / "memory", memory_records=memory)
    from_disk = await run(tmp_path / "disk", memory_records=0)

    assert from_memory == from_disk
    assert from_memory, "the steps made no records"
    assert not any(payload.startswith(b"lost-") for _, _, payload in from_memory)


async def _leave_records_in_slot(base: Path, slot: int, count: int, acked: int = 0) -> list[bytes]:
    """A process that wrote `count` records to `slot`, had the first `acked` acknowledged, and
    went away (a worker or replica that is not started again)."""
    s = spool(base, slot=slot)
    await s.open()
    try:
        payloads = await fill(s, count, start=slot * 1000)
        if acked:
            frames = await read_all(s)
            s.ack(frames[acked - 1])
            cursor = base / f"slot-{slot}" / "acked"
            await until(lambda: cursor.read_text().strip() == f"{acked:020d}", "no cursor")
    finally:
        await s.close()
    return payloads


async def test_records_left_in_a_slot_nobody_holds_are_taken_over(tmp_path: Path) -> None:
    # given slot 1 left with 50 records, 20 of them acknowledged, by a process now gone
    left = await _leave_records_in_slot(tmp_path, slot=1, count=50, acked=20)

    # when a process opens slot 0 of the same directory
    s = spool(tmp_path, slot=0)
    await s.open()
    try:
        frames = await read_all(s)
    finally:
        await s.close()

    # then it sends the 30 unacknowledged ones, payloads unchanged, and the slot is emptied
    assert [f.payload for f in frames] == left[20:]
    assert not list((tmp_path / "slot-1").glob("*.seg"))


async def test_records_after_a_takeover_are_numbered_after_the_adopted_ones(
    tmp_path: Path,
) -> None:
    # given a spool that took over 30 records of a slot nobody holds
    await _leave_records_in_slot(tmp_path, slot=1, count=50, acked=20)
    s = spool(tmp_path, slot=0)
    await s.open()
    try:
        # when it then writes records of its own, and is opened again
        own = await fill(s, 10, start=5000)
        first = await read_all(s)
    finally:
        await s.close()
    again = spool(tmp_path, slot=0)
    await again.open()
    try:
        reread = await read_all(again)
    finally:
        await again.close()

    # then its own follow the adopted ones, each with a number of its own, now and after a reopen
    assert [f.payload for f in first][30:] == own
    assert [f.seq for f in first] == list(range(1, 41))
    assert [(f.seq, f.payload) for f in reread] == [(f.seq, f.payload) for f in first]


async def test_a_slot_held_by_a_live_process_is_not_taken_over(tmp_path: Path) -> None:
    # given a live process on slot 1 with 50 records not yet acknowledged
    live = spool(tmp_path, slot=1)
    await live.open()
    try:
        await fill(live, 50)

        # when another process opens the directory
        other = spool(tmp_path, slot=0)
        await other.open()
        try:
            taken = await read_all(other)
        finally:
            await other.close()

        # then it takes nothing of them: the live one still sends its own
        assert taken == []
        assert len(await read_all(live)) == 50
    finally:
        await live.close()


async def test_records_left_in_a_slot_stay_there_when_they_do_not_fit(tmp_path: Path) -> None:
    # given slot 1 left with 50 records, and a spool with room for 10
    await _leave_records_in_slot(tmp_path, slot=1, count=50)
    room = 10 * len(encode_frame(b"record-01000", 0.0))

    # when it opens
    s = spool(tmp_path, slot=0, max_bytes=room)
    await s.open()
    try:
        taken = await read_all(s)
    finally:
        await s.close()

    # then it takes none of them (a segment moves whole), and they wait for a roomier start
    assert taken == []
    assert list((tmp_path / "slot-1").glob("*.seg"))


async def test_a_slot_that_cannot_be_read_does_not_cost_the_spool_its_own(
    tmp_path: Path,
) -> None:
    # given slot 1 left with records, one of its segments a directory (unreadable as a file)
    await _leave_records_in_slot(tmp_path, slot=1, count=5)
    (tmp_path / "slot-1" / "00000000000000000100.seg").mkdir()

    # when a process opens slot 0
    s = spool(tmp_path, slot=0)
    await s.open()
    try:
        payloads = await fill(s, 3, start=500)
        frames = await read_all(s)
    finally:
        await s.close()

    # then its own spool works: the other slot's trouble is logged, not raised
    assert [f.payload for f in frames][-3:] == payloads


async def test_a_turn_that_fails_on_a_bug_loses_its_records_but_nobody_waits_for_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a spool whose writer meets a bug (not a disk error) while encoding one turn
    s = spool(tmp_path)
    await s.open()
    real = spool_module.encode_frames
    calls = 0

    def fails_once(frames: list[Frame]) -> bytes:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ValueError("a bug")
        return real(frames)

    monkeypatch.setattr(spool_module, "encode_frames", fails_once)
    try:
        for n in range(10):
            s.append(f"lost-{n}".encode(), 1_700_000_000.0 + n)

        # when someone waits for them to be on disk (LOG_DURABILITY=sync does, per request)
        await asyncio.wait_for(s.settled(), timeout=5)
        lost = s.stats()

        # and the spool goes on with more records
        payloads = await fill(s, 5)
        frames = await read_all(s)
        s.ack(frames[-1])
        after = s.stats()
    finally:
        await s.close()

    # then the failed turn's records are counted lost, and the next ones are written and read
    assert lost.lost == 10
    assert [f.payload for f in frames] == payloads
    assert [f.seq for f in frames] == list(range(11, 16))
    assert after.unacked == 0


async def test_a_reopened_spool_skips_a_failed_write_s_numbers_without_losing_them_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # given a spool whose disk refused the middle one of three turns, and that then stopped
    options = {"max_bytes": 1 << 30, "sync_interval_s": 0.01, "max_pending": 10_000}
    s = _FullDisk(tmp_path, **options)
    await s.open()
    try:
        before = await fill(s, 10)
        s.full = True
        await fill(s, 5, start=10)
        s.full = False
        after = await fill(s, 10, start=15)
        refused = s.stats().lost
    finally:
        await s.close()

    # when it is opened again and sends what it holds
    again = spool(tmp_path)
    await again.open()
    try:
        frames = await read_all(again)
        reopened = again.stats()
    finally:
        await again.close()

    # then it sends the 20 written records, and the 5 refused ones (counted lost by the run that
    # had them) are neither counted again nor reported as damage
    assert refused == 5
    assert [f.payload for f in frames] == before + after
    assert [f.seq for f in frames] == [*range(1, 11), *range(16, 26)]
    assert reopened.lost == 0
    assert not [r for r in caplog.records if r.levelname == "ERROR" and "unreadable" in r.message]


async def test_records_are_refused_until_the_spool_has_recovered_its_slot(tmp_path: Path) -> None:
    # given a slot an earlier run left 5 records in
    first = spool(tmp_path)
    await first.open()
    try:
        left = await fill(first, 5)
    finally:
        await first.close()
    s = spool(tmp_path)

    # when a record comes before the spool is open, and others after
    early = s.append(b"too-early", 1_700_000_100.0)
    await s.open()
    try:
        later = await fill(s, 3, start=100)
        frames = await read_all(s)
        waiting = s.stats().unacked
    finally:
        await s.close()

    # then the early one is refused (the shipper counts it dropped), and the numbers stay right
    assert early is False
    assert [f.payload for f in frames] == left + later
    assert [f.seq for f in frames] == list(range(1, 9))
    assert waiting == 8


class _WriterBetweenReads(DiskSpool):
    """A spool whose writer thread takes a turn of `turn` bytes at the worst moment for
    `append`: right when it reads how many bytes the writer has taken."""

    def __init__(self, directory: Path, **options: int | float) -> None:
        self._taken_value = 0
        super().__init__(directory, **options)  # type: ignore[arg-type]
        self.turn = 0

    @property
    def _taken_bytes(self) -> int:
        if self.turn:  # the writer's order: counted on disk first, then no longer pending
            turn, self.turn = self.turn, 0
            self._disk_bytes += turn
            self._taken_value += turn
        return self._taken_value

    @_taken_bytes.setter
    def _taken_bytes(self, value: int) -> None:
        self._taken_value = value


async def test_the_size_bound_holds_when_the_writer_moves_records_to_disk_during_an_append(
    tmp_path: Path,
) -> None:
    # given a spool with room for 9 frames, all 9 appended and not yet written
    frame_size = len(encode_frame(b"record-00000", 0.0))
    s = _WriterBetweenReads(tmp_path, max_bytes=9 * frame_size, sync_interval_s=60, max_pending=100)
    await s.open()
    try:
        accepted = [s.append(f"record-{n:05d}".encode(), 0.0) for n in range(9)]

        # when the writer moves them to disk while a tenth is being appended
        s.turn = 9 * frame_size
        tenth = s.append(b"record-00009", 0.0)
    finally:
        await s.close()

    # then the tenth is refused: the nine take their room on disk as they did while pending
    assert accepted == [True] * 9
    assert tenth is False


class _FailingReads(DiskSpool):
    """A disk whose reads of the spool's segments fail (EIO) the first `failures` times."""

    failures = 0

    def _read_frames(self, path: Path, size: int, count: int) -> tuple[list[Any], bool]:
        if self.failures:
            self.failures -= 1
            raise OSError(errno.EIO, "Input/output error")
        return super()._read_frames(path, size, count)


async def _left_on_disk(directory: Path, count: int) -> list[bytes]:
    """Records an earlier run left unacknowledged: the next run reads them from disk."""
    earlier = spool(directory)
    await earlier.open()
    payloads = await fill(earlier, count)
    await earlier.close()
    return payloads


async def test_a_read_that_fails_once_is_tried_again(tmp_path: Path) -> None:
    # given records on disk, and a disk whose first read of them fails
    payloads = await _left_on_disk(tmp_path, 5)
    s = _FailingReads(tmp_path, max_bytes=1 << 30, sync_interval_s=0.01, max_pending=10_000)
    s.failures = 1
    await s.open()
    try:
        # when the sender reads, and reads again
        first = await s.read(100)
        failing = s.stats()
        second = await s.read(100)
        recovered = s.stats()
    finally:
        await s.close()

    # then the failure raises nothing and is reported until the records come, on the next read
    assert first == []
    assert "cannot read" in failing.degraded
    assert [f.payload for f in second] == payloads
    assert (recovered.degraded, recovered.lost) == ("", 0)


async def test_a_segment_that_cannot_be_read_is_counted_lost_not_read_for_ever(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given records on disk that no read can get back, for longer than READ_GIVE_UP_S
    monkeypatch.setattr(spool_module, "READ_GIVE_UP_S", 0.0)
    await _left_on_disk(tmp_path, 5)
    s = _FailingReads(tmp_path, max_bytes=1 << 30, sync_interval_s=0.01, max_pending=10_000)
    s.failures = 1_000
    await s.open()
    try:
        # when the sender keeps reading, and new records come meanwhile
        for _ in range(spool_module.READ_ATTEMPTS):
            assert await s.read(100) == []
        s.failures = 0
        assert s.append(b"new", 1_700_000_100.0)
        await s.settled()
        after = await read_all(s)
        stats = s.stats()
    finally:
        await s.close()

    # then after READ_ATTEMPTS the unreadable ones count as lost and the new ones go on
    assert stats.lost == 5
    assert [f.payload for f in after] == [b"new"]


async def test_records_a_full_disk_refused_after_a_restart_leave_nothing_unacknowledged(
    tmp_path: Path,
) -> None:
    # given records an earlier run left, and a restart onto a disk still full
    await _left_on_disk(tmp_path, 10)
    s = _FullDisk(tmp_path, max_bytes=1 << 30, sync_interval_s=0.01, max_pending=10_000)
    await s.open()
    try:
        s.full = True
        await fill(s, 5, start=100)  # refused: lost

        # when the sender does what LogShipper does: read while something is readable, ack
        batch = await s.read(2000)
        s.ack(batch[-1])
        while s.readable():
            if more := await s.read(2000):
                s.ack(more[-1])
        stats = s.stats()
    finally:
        await s.close()

    # then the refused records count as lost, not as waiting for ever (the queue depth and
    # the oldest record's age would report them until some later record was acknowledged)
    assert [f.seq for f in batch] == list(range(1, 11))
    assert stats.lost == 5
    assert (stats.unacked, stats.oldest_ts) == (0, None)


def _damage_record(path: Path, index: int) -> None:
    """Flip one byte in the payload of the `index`-th frame (from 0) of a segment file."""
    data = bytearray(path.read_bytes())
    frames, _, _ = parse_frames(bytes(data), limit=1 << 30)
    offset = sum(FRAME_OVERHEAD + len(p) for _, p in frames[:index]) + FRAME_OVERHEAD + 2
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(("damaged", "acked"), [(2, 5), (7, 5), (7, 0)])
async def test_one_damaged_record_costs_that_record_alone_counted(
    tmp_path: Path, damaged: int, acked: int
) -> None:
    # given a run that wrote 10 records to one segment and had the first `acked` acknowledged,
    # and one record's bytes damaged on disk afterwards (a bad sector, a stray write)
    payloads = await _leave_records_in_slot(tmp_path, slot=0, count=10, acked=acked)
    (segment,) = (tmp_path / "slot-0").glob("*.seg")
    _damage_record(segment, damaged)

    # when the next run opens the spool and sends what was not acknowledged
    again = spool(tmp_path)
    await again.open()
    try:
        frames = await read_all(again)
        stats = again.stats()
    finally:
        await again.close()

    # then every other unacknowledged record is sent, and the damaged one, when it was not
    # yet acknowledged, is counted lost (not silently cut off with everything after it)
    expected = [p for n, p in enumerate(payloads) if n >= acked and n != damaged]
    assert [f.payload for f in frames] == expected
    assert stats.lost == (1 if damaged >= acked else 0)


async def test_a_damaged_record_in_a_slot_taken_over_is_counted_lost(tmp_path: Path) -> None:
    # given a slot nobody holds, left with 10 unacknowledged records, the 3rd damaged
    payloads = await _leave_records_in_slot(tmp_path, slot=1, count=10)
    (segment,) = (tmp_path / "slot-1").glob("*.seg")
    _damage_record(segment, 2)

    # when a process starts and takes the slot over
    s = spool(tmp_path, slot=0)
    await s.open()
    try:
        frames = await read_all(s)
        stats = s.stats()
    finally:
        await s.close()

    # then the 9 others are sent and the damaged one is counted lost; the slot is emptied
    assert [f.payload for f in frames] == payloads[:2] + payloads[3:]
    assert stats.lost == 1
    assert not list((tmp_path / "slot-1").glob("*.seg"))


async def test_a_slot_taken_over_does_not_count_a_failed_write_s_records_lost_again(
    tmp_path: Path,
) -> None:
    # given a slot left by a process whose disk refused one turn of 5 records (counted lost
    # then) between two that were written
    s = _FullDisk(tmp_path, slot=1, max_bytes=1 << 30, sync_interval_s=0.01, max_pending=10_000)
    await s.open()
    try:
        before = await fill(s, 10, start=1000)
        s.full = True
        await fill(s, 5, start=1010)
        s.full = False
        after = await fill(s, 10, start=1015)
        refused = s.stats().lost
    finally:
        await s.close()

    # when a process takes the slot over
    taker = spool(tmp_path, slot=0)
    await taker.open()
    try:
        frames = await read_all(taker)
        stats = taker.stats()
    finally:
        await taker.close()

    # then it sends the 20 written records and counts none lost: those 5 were counted once
    assert refused == 5
    assert [f.payload for f in frames] == before + after
    assert stats.lost == 0


async def test_reads_failing_briefly_but_often_lose_nothing(tmp_path: Path) -> None:
    # given records on disk, and reads that fail more often than READ_ATTEMPTS in a row, but
    # for less than READ_GIVE_UP_S (a volume remounting)
    payloads = await _left_on_disk(tmp_path, 5)
    s = _FailingReads(tmp_path, max_bytes=1 << 30, sync_interval_s=0.01, max_pending=10_000)
    s.failures = spool_module.READ_ATTEMPTS + 2
    await s.open()
    try:
        # when the sender keeps reading until the disk answers again
        empty = [await s.read(100) for _ in range(spool_module.READ_ATTEMPTS + 2)]
        frames = await read_all(s)
        stats = s.stats()
    finally:
        await s.close()

    # then every record comes, none counted lost
    assert empty == [[]] * (spool_module.READ_ATTEMPTS + 2)
    assert [f.payload for f in frames] == payloads
    assert stats.lost == 0


async def test_a_slot_left_while_running_is_taken_over_after_the_spool_s_own_records(
    tmp_path: Path,
) -> None:
    # given a running spool with 10 records of its own
    s = spool(tmp_path, slot=0)
    await s.open()
    try:
        own = await fill(s, 10, start=5000)

        # when a process on slot 1 leaves 20 records behind, and the spool looks for such slots
        left = await _leave_records_in_slot(tmp_path, slot=1, count=20)
        taken = await s.adopt_orphans()
        frames = await read_all(s)
    finally:
        await s.close()

    # then it takes them, numbered after its own, and slot 1 is emptied
    assert taken == 20
    assert [f.payload for f in frames] == own + left
    assert [f.seq for f in frames] == list(range(1, 31))
    assert not list((tmp_path / "slot-1").glob("*.seg"))


async def test_a_slot_left_while_running_stays_when_it_does_not_fit(tmp_path: Path) -> None:
    # given a running spool with room for 40 records, 10 of them its own
    s = spool(tmp_path, slot=0, max_bytes=40 * len(encode_frame(b"record-00000", 0.0)))
    await s.open()
    try:
        own = await fill(s, 10, start=5000)

        # when a process on slot 1 leaves 50 records behind
        await _leave_records_in_slot(tmp_path, slot=1, count=50)
        taken = await s.adopt_orphans()
        frames = await read_all(s)
    finally:
        await s.close()

    # then none is taken (a segment moves whole) and they wait in their slot for a later try
    assert taken == 0
    assert [f.payload for f in frames] == own
    assert list((tmp_path / "slot-1").glob("*.seg"))


async def test_a_slot_left_while_running_keeps_records_whose_copy_is_not_durable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a running spool, and a process on slot 1 that left 20 records behind
    s = spool(tmp_path, slot=0)
    await s.open()
    try:
        await fill(s, 10, start=5000)
        await _leave_records_in_slot(tmp_path, slot=1, count=20)

        # when the spool takes them over while its disk fails to make writes durable
        def fails(fd: int) -> None:
            raise OSError(errno.EIO, "Input/output error")

        monkeypatch.setattr(os, "fdatasync", fails)
        taken = await s.adopt_orphans()
        monkeypatch.undo()
    finally:
        await s.close()

    # then the slot keeps them (as at open): a power loss could take the copy written here
    assert taken == 0
    assert list((tmp_path / "slot-1").glob("*.seg"))


async def test_a_damaged_record_found_by_a_take_over_whose_waiter_stopped_is_still_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a running spool, and a slot left with 10 records, the 3rd damaged
    s = spool(tmp_path, slot=0)
    await s.open()
    try:
        await _leave_records_in_slot(tmp_path, slot=1, count=10)
        (segment,) = (tmp_path / "slot-1").glob("*.seg")
        _damage_record(segment, 2)
        # whose take-over (in a worker thread) starts only once its caller has gone
        started, caller_gone = threading.Event(), threading.Event()
        adopt = spool_module.adopt_orphans

        def adopt_later(*args: Any) -> tuple[int, int]:
            started.set()
            caller_gone.wait(5)
            return adopt(*args)

        monkeypatch.setattr(spool_module, "adopt_orphans", adopt_later)

        # when the shipper stops looking for abandoned slots (cancels the call) meanwhile
        call = asyncio.create_task(s.adopt_orphans())
        assert await asyncio.to_thread(started.wait, 5)
        call.cancel()
        caller_gone.set()

        # then the damaged record is still counted lost once the thread is done
        await until(lambda: s.stats().lost == 1, "the damaged record was not counted")
    finally:
        await s.close()
