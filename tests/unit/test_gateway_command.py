"""`python -m gateway` on the command line: it takes no arguments, and says so."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def gateway(*args: str) -> subprocess.CompletedProcess[str]:
    # Development mode, so that a gateway that ignored its arguments would start and serve
    # (and time out here) instead of stopping at a missing JWT_SECRET.
    env = {**os.environ, "MERCH_ENV": "development", "GATEWAY_PORT": "0"}
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_help_prints_usage_and_where_the_settings_come_from() -> None:
    result = gateway("--help")

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: python -m gateway")
    assert "environment" in result.stdout
    assert "GATEWAY_PORT" in result.stdout


def test_an_argument_is_refused_instead_of_ignored() -> None:
    # a user guessing a flag, say --port, must not get a gateway on the default port
    result = gateway("--port", "9000")

    assert result.returncode == 2
    assert "unrecognized arguments: --port 9000" in result.stderr
    assert "Uvicorn running" not in result.stderr
