"""`make logs` follows the logging_service `make run` started, wherever LOGGING_SERVICE_PORT
moved it (README "Configuration"), unless LOGGING_SERVICE_ADDR names one itself."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_OURS = ("LOGGING_SERVICE_ADDR", "LOGGING_SERVICE_PORT", "MAKEFLAGS", "MAKELEVEL", "MFLAGS")


def _tail_command(**env: str) -> str:
    """The command `make logs` would run (`make -n`: printed, not run) under `env`."""
    clean = {k: v for k, v in os.environ.items() if k not in _OURS}
    printed = subprocess.run(
        ["make", "-n", "logs"],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    return next(line for line in printed.splitlines() if "logging_service tail" in line).strip()


pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


@pytest.mark.parametrize(
    ("env", "target"),
    [
        ({}, None),
        ({"LOGGING_SERVICE_PORT": "50999"}, "127.0.0.1:50999"),
        ({"LOGGING_SERVICE_PORT": "50999", "LOGGING_SERVICE_ADDR": "10.0.0.5:50052"}, None),
    ],
    ids=["default port", "make run's moved port", "an address of its own"],
)
def test_make_logs_tails_the_port_make_run_used(env: dict[str, str], target: str | None) -> None:
    # given the environment `make run` was started with; when `make logs` is asked for
    command = _tail_command(**env)
    # then it tails that port (until 2026-12-07 it always tailed the default one, so with a
    # moved `make run` it followed another stack's topic, or waited, without saying why); an
    # address given itself is the tail's own setting (LOGGING_SERVICE_ADDR) and needs no flag
    assert command.endswith("-m logging_service tail" + (f" --target {target}" if target else ""))
