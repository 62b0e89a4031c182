"""A disk spool for log records: segment files written by a thread, fsync'd in groups, deleted
once logging_service has acknowledged every record in them.

    spool = DiskSpool(Path(".merch/spool/gateway"), max_bytes=1 << 30, sync_interval_s=0.05,
                      max_pending=10_000)
    await spool.open()           # locks a slot of the directory: .merch/spool/gateway/slot-0
    spool.append(payload, ts)    # on the event loop; never blocks
    frames = await spool.read(500); ...; spool.ack(frames[-1])
    await spool.close()

Processes that share the directory (the workers of one service, replicas on one volume) never
share a spool: each locks a slot, `slot-<n>/`, trying its preferred one (its worker index)
first, then the others from 0; one that finds every slot taken refuses to start (SpoolInUse).
A restarted process takes a free slot again and first re-sends what it holds, whoever left it.
A slot holds `spool.lock` (flock'ed by its one user, with its pid), the segments
`<first sequence number, 20 digits>.seg`, and `acked`, the sequence number of the last
acknowledged record: a hint written without fsync that spares a restart from re-sending what was
already acknowledged (at least once either way). A segment is a run of frames: payload length
(u32), crc32 of ts and payload (u32), ts (f64), then the payload, a serialized LogRecord.

Durability: the writer thread takes every record appended since its last turn, writes them with
one write() and makes them durable with one fdatasync, at least every `sync_interval_s`, and at
once when someone waits in `settled()` (LOG_DURABILITY=sync), so a burst shares one fsync. A
killed process loses only records not yet written (one interval at most); a power loss, those
not yet fsync'd. A failed write (full disk, I/O error) drops that turn's records, counts them,
and marks the spool degraded until a write succeeds again; nothing raises to the caller. After a
full disk, a write must also find room for the turn that failed (up to ROOM_AFTER_FULL_MAX): a
smaller turn that squeezes into what is left does not end the degraded state, or it would flap
with every turn's size. After a restart, the numbers of a refused turn are skipped (the
segment before them ends early, cleanly), not counted lost a second time. Records are accepted
only between open() and close().
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from logging_service.buffers import BufferStats, Frame
from logging_service.orphans import adopt_orphans
from logging_service.segments import (
    FRAME_OVERHEAD,
    Segment,
    encode_frames,
    first_ts,
    parse_frames,
    scan,
    segment_name,
    step_over,
)

log = logging.getLogger("logging_service.spool")

SEGMENT_BYTES = 8 * 1024 * 1024
_READ_CHUNK = 4 * 1024 * 1024
_MIN_READ = 64 * 1024
# Written records kept in memory for the sender; beyond this it reads them back from disk.
MEMORY_BYTES = 16 * 1024 * 1024
# After a full disk, the room a write must find before the spool stops reporting itself
# degraded: the refused turn's size, but never more than this (a turn can be megabytes).
ROOM_AFTER_FULL_MAX = 1024 * 1024


# How a read of a segment ended (DiskSpool._read_frames).
_WHOLE, _DAMAGED, _UNREADABLE = "whole", "damaged", "unreadable"

# A segment whose reads keep failing (EIO, a file gone) is tried again on each read of the
# sender; once it has failed READ_ATTEMPTS times over READ_GIVE_UP_S seconds it is skipped: its
# records count as lost, and the rest go on. A brief failure (a volume remounting) costs none.
READ_ATTEMPTS = 5
READ_GIVE_UP_S = 30.0

# Processes sharing one LOG_SPOOL_DIR (workers, replicas on one volume) each lock a slot.
MAX_SLOTS = 64
# How long taking over one abandoned segment while running may wait for its records to be on
# disk here; beyond it the segment stays in its slot for a later try.
TAKE_OVER_WAIT_S = 30.0


class SpoolInUse(RuntimeError):
    """Every slot of the spool directory is held by another process."""


class DiskSpool:
    """Records on disk until acknowledged, bounded by `max_bytes` on disk and `max_pending`
    records in memory waiting for the writer. See the module docstring."""

    durable = True
    wakes_sender = True  # its writer calls on_readable after each turn (_progress)

    def __init__(
        self,
        base: Path,
        *,
        max_bytes: int,
        sync_interval_s: float,
        max_pending: int,
        segment_bytes: int = SEGMENT_BYTES,
        slot: int = 0,
        max_slots: int = MAX_SLOTS,
        memory_records: int | None = None,
        memory_bytes: int = MEMORY_BYTES,
    ) -> None:
        self.base = base
        self.directory = base / f"slot-{slot}"  # the slot this process locks, once open
        self._slot = slot
        self._max_slots = max(max_slots, slot + 1)
        self._max_bytes = max_bytes
        self._sync_interval_s = sync_interval_s
        self._max_pending = max_pending
        # The writer is woken early once half the memory bound waits, so bursts never hit it.
        self._kick_at = max(max_pending // 2, 1)
        self._segment_bytes = segment_bytes
        # Appended and not yet taken by the writer: (ts, payload), numbered from _taken + 1 on.
        # The writer makes the Frames, so that the event loop's side of a record stays cheap.
        self._pending: collections.deque[tuple[float, bytes]] = collections.deque()
        # Written and not yet read, oldest first; runs of consecutive sequence numbers (a failed
        # write leaves a gap). Bounded by records and bytes: the oldest are left to the disk.
        self._memory: collections.deque[Frame] = collections.deque()
        self._memory_records = max_pending if memory_records is None else memory_records
        self._memory_bytes = memory_bytes
        self._memory_size = 0
        self.read_back = 0  # records read from disk: an earlier run's, or after an overflow
        self._kick = threading.Event()
        # Guards _segments, each segment's size and count, _written and _memory.
        self._lock = threading.Lock()
        self._segments: list[Segment] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._callback: Callable[[], None] | None = None
        # Refusing appends until open() has recovered the slot: recovery sets the counts that
        # number the records, so one appended meanwhile would be numbered wrong.
        self._closed, self._closing = True, False
        # The event loop's side (append, ack, settled).
        self._appended = self._appended_bytes = self._acked = 0
        self._oldest_ts: float | None = None
        self._waiters: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()
        # The reader's side (read, in a worker thread while the sender awaits it).
        self._read_seq = 0  # the last sequence number read (handed out or skipped)
        self._handed = 0  # the last sequence number handed out
        self._rseg: Segment | None = None
        self._roff = self._rnext = 0  # offset in _rseg, and the sequence number found there
        self._read_lost = 0
        self._taken_over_lost = 0  # unreadable records of slots taken over while running
        # The writer thread's side; plain ints read by the others.
        self._taken = self._taken_bytes = self._written = self._settled = 0
        self._disk_bytes = self._lost = 0
        self._sync_failures = 0  # turns written but not made durable (a failed fdatasync)
        self.syncs = 0  # fsyncs made: group commit shows as far fewer than records
        self._degraded = ""
        self._read_failures = 0
        self._read_failing_since = 0.0
        self._needs_room = 0  # bytes of the turn a full disk refused; 0 when none did
        self._active: Segment | None = None
        self._fd = self._lock_fd = self._cursor_fd = -1
        self._cursor_written = 0

    # --- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        """Lock the directory, recover what a previous run left, start the writer.

        Raises SpoolInUse when another process holds it, OSError when it cannot be written.
        """
        self._loop = asyncio.get_running_loop()
        await asyncio.to_thread(self._open)
        self._thread = threading.Thread(target=self._run, name="log-spool-writer", daemon=True)
        self._thread.start()
        self._closed = False

    async def close(self) -> int:
        """Write and fsync what waits, stop the writer, release the directory.

        Returns 0: unacknowledged records stay on disk for the next start.
        """
        self._closed = self._closing = True
        self._kick.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 10)
        for _, future in self._waiters:
            if not future.done():
                future.set_result(None)
        self._waiters.clear()
        if self._active is not None:
            self._close_active()
        for fd in (self._cursor_fd, self._lock_fd):
            if fd >= 0:
                os.close(fd)  # closing the lock file releases the flock
        self._cursor_fd = self._lock_fd = -1
        return 0

    # --- the event loop's side -------------------------------------------------------------

    def append(self, payload: bytes, ts: float) -> bool:
        # Called for every record of the service, on its event loop: each field is read once.
        appended = self._appended
        waiting = appended - self._taken
        appended_bytes = self._appended_bytes + FRAME_OVERHEAD + len(payload)
        # Taken before disk: the writer counts a turn on disk first and as taken second, so
        # read in this order the two can only overlap, never miss a turn in between.
        pending_bytes = appended_bytes - self._taken_bytes
        if (
            self._closed
            or waiting >= self._max_pending
            or pending_bytes + self._disk_bytes > self._max_bytes
        ):
            return False
        self._appended = appended + 1
        self._appended_bytes = appended_bytes
        self._pending.append((ts, payload))
        if self._oldest_ts is None:
            self._oldest_ts = ts
        if waiting >= self._kick_at - 1:
            self._kick.set()
        return True

    def readable(self) -> int:
        return max(self._written - self._read_seq, 0)

    async def read(self, limit: int) -> list[Frame]:
        frames = self._read_memory(limit)
        if frames is None:  # the next record is only on disk: read up to what memory holds
            with self._lock:
                if self._memory:
                    limit = max(min(limit, self._memory[0].seq - self._read_seq - 1), 1)
            frames = await asyncio.to_thread(self._read, limit)
            self.read_back += len(frames)
        if frames:
            self._handed = frames[-1].seq
        else:
            self._ack_skipped()
            if self._acked >= self._appended:
                self._oldest_ts = None
        return frames

    def ack(self, last: Frame) -> None:
        self._acked = max(self._acked, last.seq)
        self._ack_skipped()
        # The next record's time is not known without reading it; this one's is a close bound.
        self._oldest_ts = None if self._acked >= self._appended else last.ts

    def _ack_skipped(self) -> None:
        """Records the reader skipped without handing them out (lost to a failed write, or
        unreadable) count as acknowledged once everything handed out is: nothing else would
        ever acknowledge them, when no record follows."""
        if self._acked >= self._handed and self._read_seq > self._acked:
            self._acked = self._read_seq

    async def settled(self) -> None:
        target = self._appended
        if self._settled >= target or self._thread is None or self._loop is None:
            return
        future = self._loop.create_future()
        self._waiters.append((target, future))
        self._kick.set()
        await future

    def on_readable(self, callback: Callable[[], None]) -> None:
        self._callback = callback

    async def adopt_orphans(self) -> int:
        """Take over, while running, the records of every slot no live process holds (one that
        stopped after this one had started, a replica scaled down), as `open` does at start:
        a segment at a time, appended like new records and deleted from its slot once they are
        on disk here. How many were taken; a segment that finds no room stays for a later try.
        """
        loop = self._loop
        if self._closed or loop is None:
            return 0

        def sink(records: list[tuple[float, bytes]]) -> bool:  # in the worker thread
            if self._closing:
                return False
            try:
                taken = asyncio.run_coroutine_threadsafe(self._take_over(records), loop)
            except RuntimeError:  # the loop is closed
                return False
            try:
                return taken.result(TAKE_OVER_WAIT_S)
            except Exception:  # not on disk in time: they stay in their slot too (at least once)
                taken.cancel()
                return False

        def adopt() -> int:  # in the worker thread, which a stopping shipper does not wait for
            moved, lost = adopt_orphans(self.base, self.directory, sink)
            with self._lock:  # counted here, so that records found unreadable are counted even
                self._taken_over_lost += lost  # when the task awaiting this was cancelled
            return moved

        return await asyncio.to_thread(adopt)

    async def _take_over(self, records: list[tuple[float, bytes]]) -> bool:
        """Append records of an abandoned segment; True once every one is on disk here.

        Appended in steps the memory bound has room for. False when they do not fit under the
        size bound or a write or its fsync failed meanwhile: the segment then stays in its slot,
        and what was appended already is sent from both places (at least once, never lost)."""
        size = sum(FRAME_OVERHEAD + len(payload) for _, payload in records)
        if (
            self._closed
            or self._appended_bytes - self._taken_bytes + self._disk_bytes + size > self._max_bytes
        ):
            return False
        lost, sync_failures = self._lost, self._sync_failures
        step = self._kick_at
        for start in range(0, len(records), step):
            chunk = records[start : start + step]
            for _ in range(3):  # the writer takes everything pending in each turn
                if self._appended - self._taken + len(chunk) <= self._max_pending:
                    break
                await self.settled()
            for ts, payload in chunk:
                if not self.append(payload, ts):
                    return False
            await self.settled()
        if records and self._oldest_ts is not None:
            self._oldest_ts = min(self._oldest_ts, records[0][0])
        # Written but not durable is not "on disk here": the slot keeps its copy, as at open.
        return not self._closed and self._lost == lost and self._sync_failures == sync_failures

    def stats(self) -> BufferStats:
        return BufferStats(
            unacked=max(self._appended - self._acked, 0),
            bytes=self._disk_bytes + self._appended_bytes - self._taken_bytes,
            segments=len(self._segments),
            oldest_ts=self._oldest_ts,
            degraded=self._degraded,
            lost=self._lost + self._read_lost + self._taken_over_lost,
            read_back=self.read_back,
        )

    def _progress(self) -> None:
        """On the loop, after a writer turn: release `settled()` waiters, wake the sender."""
        settled = self._settled
        while self._waiters and self._waiters[0][0] <= settled:
            _, future = self._waiters.popleft()
            if not future.done():
                future.set_result(None)
        if self._callback is not None:
            self._callback()

    # --- opening and recovery (a worker thread) ------------------------------------------

    def _open(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        fd = -1
        for slot in dict.fromkeys((self._slot, *range(self._max_slots))):
            directory = self.base / f"slot-{slot}"
            directory.mkdir(exist_ok=True)
            fd = os.open(directory / "spool.lock", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)  # another live process holds this slot: try the next one
                fd = -1
                continue
            except OSError:
                os.close(fd)
                raise
            self.directory = directory
            break
        if fd < 0:
            raise SpoolInUse(
                f"all {self._max_slots} slots of log spool {self.base} are in use by other"
                " processes; give this one a LOG_SPOOL_DIR of its own"
            )
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            self._cursor_fd = os.open(self.directory / "acked", os.O_RDWR | os.O_CREAT, 0o644)
            raw = os.pread(self._cursor_fd, 32, 0).strip()
            self._recover(int(raw) if raw.isdigit() else 0)
            _, self._read_lost = adopt_orphans(self.base, self.directory, self._adopt)
        except OSError:
            if self._cursor_fd >= 0:
                os.close(self._cursor_fd)
                self._cursor_fd = -1
            os.close(fd)
            raise
        self._lock_fd = fd

    def _recover(self, acked: int) -> None:
        """Take over the segments of a previous run: every one is read again from the record
        after `acked`; a torn frame at the end of the last one (a crash mid-write) is cut off."""
        segments = scan(self.directory)
        last = max([acked, *(s.last for s in segments)])
        kept = []
        for segment in segments:
            if segment.count <= 0 or segment.last <= acked:
                segment.path.unlink(missing_ok=True)
            else:
                kept.append(segment)
        self._segments = kept
        self._disk_bytes = sum(s.size for s in kept)
        self._appended = self._taken = self._written = self._settled = last
        self._acked = self._read_seq = self._handed = self._cursor_written = acked
        if kept:
            self._oldest_ts = first_ts(kept[0].path)
            log.info(
                "log spool %s: %d records left unacknowledged by an earlier run, re-sending",
                self.directory,
                last - acked,
            )

    def _adopt(self, records: list[tuple[float, bytes]]) -> bool:
        """Write records taken from an abandoned slot (logging_service.orphans) as if appended
        now; True once they are durable here (the slot may then delete them), False when they
        do not fit under the size bound or the disk fails. Before the writer starts."""
        first = self._appended + 1
        frames = [Frame(first + i, ts, payload) for i, (ts, payload) in enumerate(records)]
        data = encode_frames(frames)
        if self._disk_bytes + len(data) > self._max_bytes:
            return False
        try:
            self._write(data, frames)
        except OSError as exc:  # cut off again; they stay in their slot for a later start
            self._write_failed(exc, 0)
            return False
        self._disk_bytes += len(data)
        self._appended = self._taken = self._settled = frames[-1].seq
        if self._oldest_ts is None:
            self._oldest_ts = frames[0].ts
        try:
            os.fdatasync(self._fd)
        except OSError as exc:  # written, maybe not durable: the slot keeps its copy too
            self._degrade(f"cannot fsync in {self.directory}: {exc.strerror or exc}")
            return False
        return True

    # --- the writer thread -----------------------------------------------------------------

    def _run(self) -> None:
        while True:
            self._kick.wait(self._sync_interval_s)
            self._kick.clear()
            closing = self._closing  # read first: a close during this turn gets one more
            try:
                self._turn()
            except Exception:  # the writer outlives any bug; the turn's records count as lost
                log.exception("log spool writer failed a turn")
            if closing:
                return

    def _turn(self) -> None:
        count = len(self._pending)
        try:
            if count:
                self._write_turn(count)
            self._collect()
        finally:
            if count and self._loop is not None:
                with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                    self._loop.call_soon_threadsafe(self._progress)

    def _write_turn(self, count: int) -> None:
        """Write and fsync the `count` oldest pending records. However that ends, they stop
        being pending and nobody waits for them any longer; those not written count as lost."""
        popleft, first = self._pending.popleft, self._taken + 1
        items = [popleft() for _ in range(count)]
        try:
            frames = [Frame(first + i, ts, payload) for i, (ts, payload) in enumerate(items)]
            data = encode_frames(frames)
        except Exception:
            # A bug, not the disk (_run logs it): the records are lost, like a failed write's.
            self._taken += count
            self._taken_bytes += sum(FRAME_OVERHEAD + len(payload) for _, payload in items)
            self._lost += count
            with self._lock:
                self._written = self._taken
            self._settled = self._taken
            raise
        # Counted on disk before they stop counting as pending: in between, `append` (on
        # the event loop) would see room that is not there and overrun the size bound.
        self._disk_bytes += len(data)
        self._taken += count
        self._taken_bytes += len(data)
        try:
            self._write(data, frames)
        except OSError as exc:
            self._disk_bytes -= len(data)  # the partial write is cut off again
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                self._needs_room = min(len(data), ROOM_AFTER_FULL_MAX)
            self._write_failed(exc, count)
        else:
            try:
                os.fdatasync(self._fd)
            except OSError as exc:
                self._sync_failures += 1
                self._degrade(f"cannot fsync in {self.directory}: {exc.strerror or exc}")
            else:
                self.syncs += 1
                if self._degraded and self._has_room():
                    log.warning("log spool %s is writable again", self.directory)
                    self._degraded = ""
        finally:
            self._settled = self._taken

    def _write(self, data: bytes, frames: list[Frame]) -> None:
        segment = self._active
        if segment is None or (segment.size and segment.size + len(data) > self._segment_bytes):
            if segment is not None:
                self._close_active()
            segment = self._new_segment(frames[0].seq)
        view = memoryview(data)
        done = 0
        while done < len(data):
            done += os.write(self._fd, view[done:])
        with self._lock:
            segment.size += len(data)
            segment.count += len(frames)
            self._written = segment.last
            self._remember(frames)

    def _remember(self, frames: list[Frame]) -> None:
        """Keep written frames for the sender, dropping the oldest beyond the memory bound
        (they stay on disk, where the reader finds them). Under self._lock."""
        memory = self._memory
        memory.extend(frames)
        self._memory_size += sum(len(f.payload) for f in frames)
        while memory and (
            len(memory) > self._memory_records or self._memory_size > self._memory_bytes
        ):
            self._memory_size -= len(memory.popleft().payload)

    def _new_segment(self, first: int) -> Segment:
        path = self.directory / segment_name(first)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        segment = Segment(first, path)
        self._active = segment
        with self._lock:
            self._segments.append(segment)
        # The new name must survive a power loss too.
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return segment

    def _close_active(self) -> None:
        if self._active is None:
            return
        with contextlib.suppress(OSError):
            os.fdatasync(self._fd)
        with contextlib.suppress(OSError):
            os.close(self._fd)
        self._active.closed = True
        self._active, self._fd = None, -1

    def _write_failed(self, exc: OSError, count: int) -> None:
        self._lost += count
        self._degrade(f"cannot write to {self.directory}: {exc.strerror or exc}")
        segment = self._active
        if segment is not None:
            # A partial frame may follow the last whole one: cut it, and start a new segment
            # next time (sequence numbers stay contiguous within a segment).
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, segment.size)
            self._close_active()
            if segment.count == 0:  # nothing in it: do not leave one empty file per turn
                with self._lock:
                    self._segments.remove(segment)
                with contextlib.suppress(OSError):
                    segment.path.unlink()
        with self._lock:
            self._written = self._taken

    def _has_room(self) -> bool:
        """Whether the disk has room for the turn a full disk last refused (always, if none)."""
        if self._needs_room and self._free_bytes() < self._needs_room:
            return False
        self._needs_room = 0
        return True

    def _free_bytes(self) -> int:
        """Free bytes on the active segment's filesystem for this process: root may also
        write into the blocks reserved for it (ext4's 5 %), so for root those count too."""
        try:
            stat = os.fstatvfs(self._fd)
        except OSError:
            return 0
        blocks = stat.f_bfree if os.geteuid() == 0 else stat.f_bavail
        return blocks * stat.f_frsize

    def _degrade(self, reason: str) -> None:
        if not self._degraded:
            log.error("log spool degraded: %s; records are dropped and counted", reason)
        self._degraded = reason

    def _collect(self) -> None:
        """Delete the segments whose every record is acknowledged; note the cursor."""
        acked = self._acked
        with self._lock:
            # The active segment goes too once idle and fully acknowledged; the next write
            # starts a new one.
            done = [
                s for s in self._segments if s.last <= acked and (s.closed or not self._pending)
            ]
            self._segments = [s for s in self._segments if s not in done]
        for segment in done:
            if segment is self._active:
                self._close_active()
            self._disk_bytes -= segment.size  # first: once the file is gone, its room is free
            try:
                segment.path.unlink(missing_ok=True)
            except OSError as exc:
                self._degrade(f"cannot delete {segment.path.name}: {exc.strerror or exc}")
        if acked != self._cursor_written and self._cursor_fd >= 0:
            with contextlib.suppress(OSError):
                os.pwrite(self._cursor_fd, f"{acked:020d}\n".encode(), 0)
                self._cursor_written = acked

    # --- the reader (one read at a time) -------------------------------------------------

    def _read_memory(self, limit: int) -> list[Frame] | None:
        """The next records from memory, on the event loop; None when the next one is on disk
        only ([] when nothing more was written)."""
        frames: list[Frame] = []
        with self._lock:
            memory = self._memory
            while memory and memory[0].seq <= self._read_seq:  # read from disk meanwhile
                self._memory_size -= len(memory.popleft().payload)
            if memory and memory[0].seq == self._read_seq + 1:
                # Usually the next `limit` are consecutive (only a failed write leaves a gap):
                # then they are taken at once, else one at a time up to the gap.
                count = min(limit, len(memory))
                if memory[count - 1].seq == self._read_seq + count:
                    popleft = memory.popleft
                    frames = [popleft() for _ in range(count)]
                    self._memory_size -= sum([len(frame.payload) for frame in frames])
                    self._read_seq += count
                else:
                    while memory and len(frames) < limit and memory[0].seq == self._read_seq + 1:
                        frame = memory.popleft()
                        self._memory_size -= len(frame.payload)
                        frames.append(frame)
                        self._read_seq = frame.seq
            if not frames and self._written > self._read_seq:
                return None
        return frames

    def _read(self, limit: int) -> list[Frame]:
        frames: list[Frame] = []
        while len(frames) < limit:
            with self._lock:
                segment = next((s for s in self._segments if s.last > self._read_seq), None)
                if segment is None:
                    # Whatever else was written is gone: lost to a failed write.
                    self._read_seq = max(self._read_seq, self._written)
                    break
                size, end = segment.size, segment.first + segment.count
            if segment is not self._rseg:
                self._rseg, self._roff, self._rnext = segment, 0, segment.first
            skip = max(self._read_seq + 1 - self._rnext, 0)
            try:
                parsed, state = self._read_frames(
                    segment.path, size, min(skip + limit - len(frames), end - self._rnext)
                )
            except OSError as exc:
                now = time.monotonic()
                if not self._read_failures:
                    self._read_failing_since = now
                self._read_failures += 1
                if (
                    self._read_failures < READ_ATTEMPTS
                    or now - self._read_failing_since < READ_GIVE_UP_S
                ):
                    self._degrade(f"cannot read {segment.path}: {exc.strerror or exc}")
                    break  # what was read goes; this segment is tried again next time
                parsed, state = [], _UNREADABLE
            if self._read_failures:
                self._read_failures = 0
                if self._degraded.startswith("cannot read"):
                    self._degraded = ""
            for ts, payload in parsed:
                seq, self._rnext = self._rnext, self._rnext + 1
                if seq > self._read_seq:
                    frames.append(Frame(seq, ts, payload))
                    self._read_seq = seq
            if state == _DAMAGED:
                # One record's bytes are wrong, its neighbours whole: it alone is lost.
                seq, self._rnext = self._rnext, self._rnext + 1
                if seq > self._read_seq:
                    self._read_lost += 1
                    self._read_seq = seq
                    log.error("log spool: record %d of %s is damaged, dropped", seq, segment.path)
            elif state == _UNREADABLE:
                # The rest of this segment cannot be read back (torn or damaged): skip it.
                lost = end - self._rnext
                self._read_lost += lost
                log.error("log spool: %d records of %s unreadable, dropped", lost, segment.path)
                self._read_seq = max(self._read_seq, end - 1)
                self._rnext, self._roff = end, size
            elif not parsed:
                # The file ends cleanly before the next segment's first number: a write that
                # failed in an earlier run used those numbers (scan() counts a segment up to the
                # next one's name), and that run counted the records lost. Nothing to read.
                log.info(
                    "log spool: %d records after %s were refused by the disk in an earlier run",
                    end - self._rnext,
                    segment.path.name,
                )
                self._read_seq = max(self._read_seq, end - 1)
                self._rnext, self._roff = end, size
        return frames

    def _read_frames(
        self, path: Path, size: int, count: int
    ) -> tuple[list[tuple[float, bytes]], str]:
        """Up to `count` frames of the reader's segment from its offset (at most `size`), and
        what ended them: _WHOLE (nothing wrong), _DAMAGED (one damaged frame at the offset was
        stepped over, and the offset moved past it) or _UNREADABLE (the rest of the segment)."""
        remaining = size - self._roff
        if remaining <= 0:
            return [], _WHOLE  # the end of the file, cleanly: nothing torn or damaged
        # Records are a few hundred bytes: read about what is needed, more if a frame is longer.
        for want in (min(remaining, _MIN_READ + count * 1024), min(remaining, _READ_CHUNK)):
            with path.open("rb") as f:
                f.seek(self._roff)
                data = f.read(want)
            parsed, used, corrupt = parse_frames(data, count)
            if corrupt and not parsed:
                after = step_over(data, 0)
                # A step to the end of a read that is not the end of the file checked no
                # neighbour: read on, so that the frame after it is checked too.
                if after is not None and (after < len(data) or want == remaining):
                    self._roff += after
                    return [], _DAMAGED
                if want < remaining:
                    continue
            if parsed or corrupt or want == remaining:
                # Frames before a damaged one go now; the next read starts at it.
                self._roff += used
                return parsed, _WHOLE if parsed else _UNREADABLE
        return [], _UNREADABLE
