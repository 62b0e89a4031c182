"""bench.logfloor on a real broker and logging_service: both call sizes are acknowledged in
full (it raises otherwise), and the records cost logging_service CPU (a broken measurement reads
zero or fails); and however the bench ends, it leaves neither process behind."""

from __future__ import annotations

import contextlib
import math
import subprocess
import sys
import time

import psutil

from bench.logfloor import measure
from tests.conftest import ROOT


def test_logging_service_and_the_broker_are_each_costed_per_call_and_per_record() -> None:
    # when a second of calls of each size is timed
    floors = measure(records=1000, rate=20, seconds=1.0)

    # then both processes were measured, and logging_service's records cost it CPU
    assert [f.process for f in floors] == ["logging_service", "broker"]
    assert all(math.isfinite(f.per_call_us) and math.isfinite(f.per_record_us) for f in floors)
    assert floors[0].per_record_us > 0


def both_servers_among(children: list[psutil.Process]) -> bool:
    """Whether the bench's broker and logging_service have started (its watchdog aside)."""
    names: set[str] = set()
    for child in children:
        with contextlib.suppress(psutil.NoSuchProcess):
            names.update(child.cmdline())
    return {"broker", "logging_service"} <= names


def test_a_killed_logfloor_leaves_neither_the_broker_nor_logging_service_behind() -> None:
    # given the bench running, with its broker and logging_service started
    bench = subprocess.Popen(
        [sys.executable, "-m", "bench.logfloor", "--seconds", "60"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    children: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 60
        while not both_servers_among(children):
            assert bench.poll() is None, f"the bench exited with {bench.returncode}"
            assert time.monotonic() < deadline, f"the bench started only {children}"
            time.sleep(0.1)
            children = psutil.Process(bench.pid).children()

        # when it is killed outright (SIGTERM, SIGHUP of a closed terminal: no cleanup either)
        bench.kill()
        bench.wait(10)

        # then its watchdog kills both, and goes (they may linger as zombies until reaped)
        _, alive = psutil.wait_procs(children, timeout=10)
        assert all(proc.status() == psutil.STATUS_ZOMBIE for proc in alive), alive
    finally:
        bench.kill()
        bench.wait(10)
        # What a failing run left behind must not outlive the test.
        for child in children:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
