"""A supervisor's metrics directory: one SIGKILLed supervisor's is removed by the next start."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from plumbing.workers import WorkerPool


def test_the_directory_of_a_supervisor_that_died_is_removed_at_the_next_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given the metrics directories of a supervisor that was SIGKILLed (its pid now gone)
    # and of one still running (this process)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead = tmp_path / f"gateway-metrics-{gone.stdout.strip()}-abc123"
    alive = tmp_path / f"gateway-metrics-{Path('/proc/self').resolve().name}-def456"
    other = tmp_path / "db_service-metrics-1-ghi789"
    for directory in (dead, alive, other):
        directory.mkdir()
        (directory / "counter_1.db").write_bytes(b"x")

    # when a gateway supervisor makes its own
    pool = WorkerPool("gateway", [sys.executable, "-c", "pass"], count=1, env={}, grace_s=1.0)
    made = pool._metrics_dir()

    # then the dead one's is gone, the live one's and another service's are kept
    assert made.exists()
    assert not dead.exists()
    assert alive.exists()
    assert other.exists()
