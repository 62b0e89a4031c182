"""How many CPUs this process may keep busy: its cores, capped by its cgroup's CPU quota.

    cores()        # 2 in `docker run --cpus=2` on a 64-core node, where the affinity says 64

A container's CPU limit (`docker run --cpus`, a Kubernetes `limits.cpu`) is not a cpuset: the
process may run on every core of the node, but the kernel's CFS quota lets it use only so much
CPU time per period. `auto` workers sized by the affinity alone would then be one per core of
the node: 64 processes thrashing on 2 CPUs, each with its own database pool. So the quota is
read the way the JDK, Go's automaxprocs and .NET read it, and anything missing or unreadable
means no limit: a service never fails to start because of this.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath

_MOUNT = "sys/fs/cgroup"


def cores(root: Path = Path("/")) -> int:
    """The CPUs this process may keep busy: its cpuset, capped by its cgroup's CPU quota.

    `root` is where /proc and /sys are found (a test's fake tree; the real one otherwise).
    """
    if hasattr(os, "sched_getaffinity"):
        affinity = len(os.sched_getaffinity(0))
    else:
        affinity = os.cpu_count() or 1
    limit = cpu_limit(root)
    return affinity if limit is None else min(affinity, limit)


def cpu_limit(root: Path = Path("/")) -> int | None:
    """The CPU quota of this process's cgroup and its parents, rounded up; None if none is set.

    The smallest limit on the way up to the root counts: a parent's quota caps its children.
    """
    try:
        lines = (root / "proc/self/cgroup").read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    quotas: list[float] = []
    for line in lines:
        fields = line.split(":", 2)  # hierarchy-id:controllers:path
        if len(fields) != 3:
            continue
        _, controllers, path = fields
        if not controllers:  # `0::<path>`: the cgroup v2 hierarchy
            quotas += _quotas(root / _MOUNT, path, _v2_quota)
        elif "cpu" in controllers.split(","):  # cgroup v1, mounted as `cpu` or `cpu,cpuacct`
            for mount in (root / _MOUNT / "cpu", root / _MOUNT / controllers):
                if mount.is_dir():
                    quotas += _quotas(mount, path, _v1_quota)
                    break
    if not quotas:
        return None
    return max(1, math.ceil(min(quotas)))


def _quotas(mount: Path, path: str, read: Callable[[Path], float | None]) -> Iterator[float]:
    """The quotas (in CPUs) set on the cgroup at `path` and on each of its parents.

    Levels that are missing are skipped: without a cgroup namespace a container's
    /proc/self/cgroup names its host path (`/docker/<id>`) while its own cgroup is mounted at
    the root, which the walk up still reaches.
    """
    # `..` appears when the cgroup lies outside the namespace's root: not under this mount.
    parts = [part for part in PurePosixPath(path.strip()).parts[1:] if part != ".."]
    for depth in range(len(parts), -1, -1):
        try:
            quota = read(mount.joinpath(*parts[:depth]))
        except (OSError, ValueError, UnicodeDecodeError):
            continue
        if quota is not None:
            yield quota


def _v2_quota(cgroup: Path) -> float | None:
    """`cpu.max`: "200000 100000" is 2 CPUs, "max 100000" no limit."""
    quota, period = (cgroup / "cpu.max").read_text().split()
    if quota == "max":
        return None
    return _ratio(int(quota), int(period))


def _v1_quota(cgroup: Path) -> float | None:
    """`cpu.cfs_quota_us` / `cpu.cfs_period_us`; a quota of -1 is no limit."""
    quota = int((cgroup / "cpu.cfs_quota_us").read_text())
    period = int((cgroup / "cpu.cfs_period_us").read_text())
    return _ratio(quota, period)


def _ratio(quota: int, period: int) -> float | None:
    return quota / period if quota > 0 and period > 0 else None
