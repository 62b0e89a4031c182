"""CPU time and memory of the processes under test, read from /proc.

CPU time is summed over a process and all its descendants, live or already reaped: PostgreSQL
answers from backends that are children of the postmaster, and a gateway may one day fork
workers. The difference of two snapshots divided by the requests served in between is the
CPU cost of one request, per process. Linux only, like wrk.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

_PROC = Path("/proc")
_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class ProcStat:
    """The fields of /proc/<pid>/stat we use; times in seconds."""

    pid: int
    ppid: int
    cpu_s: float  # utime + stime
    reaped_children_cpu_s: float  # cutime + cstime: children that exited and were waited for
    rss_bytes: int


def read_stat(pid: int) -> ProcStat | None:
    """/proc/<pid>/stat, parsed; None when the process is gone."""
    return _read_stat(pid, _PROC / str(pid) / "stat")


def main_thread_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of the main thread of `pid` alone; None when it is gone."""
    stat = _read_stat(pid, _PROC / str(pid) / "task" / str(pid) / "stat")
    return None if stat is None else stat.cpu_s


def _read_stat(pid: int, path: Path) -> ProcStat | None:
    """A process's or a thread's stat file (the same fields), parsed; None when it is gone."""
    try:
        text = path.read_text()
    except OSError:
        return None
    # The command name is in parentheses and may itself contain spaces and parentheses.
    fields = text.rsplit(")", 1)[1].split()
    # fields[0] is field 3 of proc(5): state; ppid is 4, utime..cstime 14..17, rss 24.
    return ProcStat(
        pid=pid,
        ppid=int(fields[1]),
        cpu_s=(int(fields[11]) + int(fields[12])) / _TICKS_PER_S,
        reaped_children_cpu_s=(int(fields[13]) + int(fields[14])) / _TICKS_PER_S,
        rss_bytes=int(fields[21]) * _PAGE_BYTES,
    )


def _all_stats() -> dict[int, ProcStat]:
    stats = {}
    for entry in _PROC.iterdir():
        if entry.name.isdigit():
            stat = read_stat(int(entry.name))
            if stat is not None:
                stats[stat.pid] = stat
    return stats


def _tree(root: int, stats: Mapping[int, ProcStat]) -> list[ProcStat]:
    """`root` and its live descendants."""
    children: dict[int, list[int]] = {}
    for stat in stats.values():
        children.setdefault(stat.ppid, []).append(stat.pid)
    tree, pending = [], [root]
    while pending:
        pid = pending.pop()
        if pid in stats:
            tree.append(stats[pid])
            pending.extend(children.get(pid, []))
    return tree


def cpu_snapshot(pids: Mapping[str, int]) -> dict[str, float]:
    """CPU seconds so far of each named process tree, reaped descendants included."""
    stats = _all_stats()
    return {
        name: sum(s.cpu_s + s.reaped_children_cpu_s for s in _tree(pid, stats))
        for name, pid in pids.items()
    }


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of `pid` and its live descendants."""
    stat = read_stat(pid)
    if stat is None:
        return 0
    return sum(s.rss_bytes for s in _tree(pid, _all_stats()))


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (all cores, all processes), from /proc/stat."""
    try:
        first = (_PROC / "stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return 0.0
    # cpu user nice system idle iowait irq softirq steal ...: everything but idle and iowait.
    ticks = [int(v) for v in first[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / _TICKS_PER_S


def cpu_ms_per_request(
    before: Mapping[str, float], after: Mapping[str, float], requests: int
) -> dict[str, float]:
    """Milliseconds of CPU per request of each process between two snapshots."""
    if requests <= 0:
        return {name: 0.0 for name in after}
    return {name: (after[name] - before.get(name, 0.0)) * 1000 / requests for name in after}
