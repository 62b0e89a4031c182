"""Slots of a spool directory that no process holds any more, and the records left in them.

A slot is left behind when a service runs with fewer processes than before (fewer workers, a
replica scaled down) or a process stops after its successor started: nobody takes `slot-2/`
again, and its unacknowledged records would wait there forever. A spool takes them over when it
opens (DiskSpool.open) and again every 30 s while it runs (DiskSpool.adopt_orphans, called by
LogShipper): for each slot it can lock
that has segments, it copies the records after the slot's `acked` cursor into its own spool, a
segment at a time, and deletes each segment once the copy is on disk. Records keep their
payload, so their `event_id`: a crash in between sends some twice, never none.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Callable
from pathlib import Path

from logging_service.segments import frames_of, scan

log = logging.getLogger("logging_service.spool")

# Takes the records of one segment (time, payload); False when the spool has no room for them.
Sink = Callable[[list[tuple[float, bytes]]], bool]


def adopt_orphans(base: Path, own: Path, sink: Sink) -> tuple[int, int]:
    """Move the unacknowledged records of every free slot of `base` but `own` into `sink`;
    how many records were moved, and how many were lost to damage on disk (to be counted as
    dropped). A slot another process holds is left alone."""
    moved = lost = 0
    for directory in sorted(base.glob("slot-*")):
        if directory == own or not directory.is_dir() or not any(directory.glob("*.seg")):
            continue
        try:
            fd = os.open(directory / "spool.lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)  # a live process holds it (or it cannot be locked): not an orphan
            continue
        try:
            slot_moved, slot_lost = _adopt_slot(directory, sink)
            moved, lost = moved + slot_moved, lost + slot_lost
        except OSError as exc:  # another slot's trouble must not cost this spool its own
            log.error("log spool: cannot take over %s: %s", directory, exc.strerror or exc)
        finally:
            os.close(fd)  # releases the lock
    return moved, lost


def _adopt_slot(directory: Path, sink: Sink) -> tuple[int, int]:
    cursor = directory / "acked"
    try:
        raw = cursor.read_text().strip()
    except OSError:
        raw = ""
    acked = int(raw) if raw.isdigit() else 0
    moved = lost = 0
    for segment in scan(directory):
        if segment.last > acked:
            data = segment.path.read_bytes()
            frames, end = frames_of(data, limit=segment.count)
            skip = max(acked + 1 - segment.first, 0)
            records = [frame for frame in frames[skip:] if frame is not None]
            # Damaged frames stepped over, and what could not be framed after them when the
            # file goes on past the readable part. A file that ends cleanly short of its count
            # held a write the disk refused, which that process counted lost already.
            unreadable = len(frames[skip:]) - len(records)
            if end < len(data):
                unreadable += segment.count - max(len(frames), skip)
            if records and not sink(records):
                log.warning("log spool full: records of %s stay in %s", directory, segment.path)
                return moved, lost
            if unreadable > 0:
                log.error(
                    "log spool: %d records of %s are unreadable, dropped", unreadable, segment.path
                )
                lost += unreadable
            moved += len(records)
        segment.path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            cursor.write_text(f"{segment.last:020d}\n")
    if moved:
        log.info(
            "log spool: %d records left in %s by an earlier process, re-sending", moved, directory
        )
    return moved, lost
