"""GATEWAY_WORKERS / DB_SERVICE_WORKERS: what they accept, what `auto` counts, and what a
supervisor refuses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from db_service.settings import Settings as DBSettings
from gateway.settings import Settings as GatewaySettings
from plumbing.cpus import cpu_limit
from plumbing.workers import cores

ROOT = Path(__file__).resolve().parents[2]
# Production is the default; a real-looking secret is all it needs here.
SECRET = {"jwt_secret": "s" * 40}


@pytest.mark.parametrize(
    ("settings", "field"),
    [(GatewaySettings, "gateway_workers"), (DBSettings, "db_service_workers")],
)
@pytest.mark.parametrize(("given", "expected"), [("auto", cores()), ("AUTO", cores()), ("3", 3)])
def test_workers_are_a_number_or_one_per_core(
    settings: type[GatewaySettings | DBSettings], field: str, given: str, expected: int
) -> None:
    assert getattr(settings(**SECRET, **{field: given}), field) == expected


# A container's cgroups as its /proc/self/cgroup and /sys/fs/cgroup show them, by kernel setup.
V2 = "0::/kubepods/pod1/app\n"
V1 = "5:cpuacct,cpu:/docker/abc\n4:memory:/docker/abc\n"
# cgroup v1 without a cgroup namespace: the host's path, the container's own cgroup at the mount.
V1_HOST_PATH = "4:cpu,cpuacct:/docker/abc\n"
HYBRID = "1:cpu:/\n0::/\n"


def fake_root(root: Path, cgroup: str, files: dict[str, str]) -> Path:
    """A fake `/` holding /proc/self/cgroup and the given files under /sys/fs/cgroup."""
    (root / "proc/self").mkdir(parents=True)
    (root / "proc/self/cgroup").write_text(cgroup)
    for name, text in files.items():
        path = root / "sys/fs/cgroup" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
    return root


def v1_quota(directory: str, quota: int, period: int = 100000) -> dict[str, str]:
    return {
        f"{directory}/cpu.cfs_quota_us": str(quota),
        f"{directory}/cpu.cfs_period_us": str(period),
    }


@pytest.mark.parametrize(
    ("cgroup", "files", "expected"),
    [
        pytest.param(V2, {"kubepods/pod1/app/cpu.max": "200000 100000"}, 2, id="v2-limit"),
        pytest.param(V2, {"kubepods/pod1/app/cpu.max": "max 100000"}, None, id="v2-max"),
        pytest.param(V2, {"kubepods/pod1/app/cpu.max": "150000 100000"}, 2, id="v2-1.5-cpus"),
        pytest.param(V2, {"kubepods/pod1/app/cpu.max": "20000 100000"}, 1, id="v2-0.2-cpus"),
        pytest.param(
            V2,
            {"kubepods/pod1/app/cpu.max": "max 100000", "kubepods/cpu.max": "300000 100000"},
            3,
            id="v2-limit-on-a-parent-only",
        ),
        pytest.param(
            V2,
            {
                "kubepods/pod1/app/cpu.max": "800000 100000",
                "kubepods/pod1/cpu.max": "200000 100000",
            },
            2,
            id="v2-the-smallest-limit-wins",
        ),
        pytest.param("0::/\n", {"cpu.max": "100000 50000"}, 2, id="v2-namespaced-root"),
        pytest.param(V1, v1_quota("cpu/docker/abc", 150000), 2, id="v1-limit"),
        pytest.param(V1, v1_quota("cpu/docker/abc", -1), None, id="v1-no-limit"),
        pytest.param(V1, v1_quota("cpu", 300000), 3, id="v1-limit-on-a-parent-only"),
        pytest.param(
            V1_HOST_PATH, v1_quota("cpu,cpuacct", 100000), 1, id="v1-own-cgroup-at-the-mount"
        ),
        pytest.param(HYBRID, v1_quota("cpu", 250000), 3, id="hybrid"),
        pytest.param(V2, {}, None, id="no-cgroup-files"),
        pytest.param(V2, {"kubepods/pod1/app/cpu.max": "garbage"}, None, id="unreadable-v2"),
        pytest.param(V1, {"cpu/docker/abc/cpu.cfs_quota_us": "50000"}, None, id="v1-no-period"),
        pytest.param("nonsense\n", {"cpu.max": "100000 100000"}, None, id="unreadable-cgroup"),
    ],
)
def test_auto_counts_the_cpu_quota_of_the_cgroup(
    tmp_path: Path, cgroup: str, files: dict[str, str], expected: int | None
) -> None:
    # given a process's cgroup and the CPU quota files a container runtime wrote for it
    root = fake_root(tmp_path, cgroup, files)

    # when the limit is read, then it is the smallest quota on the way up, in whole CPUs
    assert cpu_limit(root) == expected


def test_without_a_proc_filesystem_there_is_no_limit(tmp_path: Path) -> None:
    # given a system without /proc/self/cgroup (not Linux, or /proc not mounted)
    # when the limit is read, then there is none, and auto counts the cores
    assert cpu_limit(tmp_path) is None
    assert cores(tmp_path) == len(os.sched_getaffinity(0))


def test_auto_is_the_quota_when_the_quota_is_smaller_than_the_affinity(tmp_path: Path) -> None:
    # given `docker run --cpus=0.5` on this machine's cores
    root = fake_root(tmp_path, V2, {"kubepods/pod1/app/cpu.max": "50000 100000"})

    # when auto counts, then it is one worker, not one per core of the node
    assert cores(root) == 1


def test_auto_is_the_affinity_when_the_affinity_is_smaller_than_the_quota(tmp_path: Path) -> None:
    # given a quota of 1000 CPUs, more than this process's cpuset
    root = fake_root(tmp_path, V2, {"kubepods/pod1/app/cpu.max": "100000000 100000"})

    # when auto counts, then the cpuset caps it
    assert cores(root) == len(os.sched_getaffinity(0))


def test_auto_on_this_machine_is_between_one_and_its_cores() -> None:
    # given this machine's real /proc/self/cgroup and /sys/fs/cgroup, whatever they hold
    # when auto counts
    count = cores()

    # then it is at least one worker and no more than the cores this process may run on
    assert 1 <= count <= len(os.sched_getaffinity(0))


@pytest.mark.parametrize("given", ["0", "-1", "many", "257"])
def test_nonsense_worker_counts_are_refused(given: str) -> None:
    with pytest.raises(ValidationError):
        GatewaySettings(**SECRET, gateway_workers=given)


def test_one_worker_is_the_default() -> None:
    assert GatewaySettings(**SECRET).gateway_workers == 1
    assert DBSettings(**SECRET).db_service_workers == 1


@pytest.mark.parametrize(
    ("module", "env", "message"),
    [
        ("gateway", {"GATEWAY_WORKERS": "2", "GATEWAY_PORT": "0"}, "needs a fixed GATEWAY_PORT"),
        (
            "db_service",
            {"DB_SERVICE_WORKERS": "2", "DB_SERVICE_LISTEN": "127.0.0.1:0"},
            "needs a fixed port",
        ),
    ],
)
def test_several_workers_on_port_0_are_refused(
    module: str, env: dict[str, str], message: str
) -> None:
    # given several workers and "any free port", which each worker would choose for itself
    # when the service starts
    result = subprocess.run(
        [sys.executable, "-m", module],
        env={"PATH": "/usr/bin:/bin", "MERCH_ENV": "development", **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    # then it refuses with one line, as for any invalid configuration
    assert result.returncode == 2
    assert message in result.stderr
