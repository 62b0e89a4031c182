"""A test run stopped from outside leaves none of the servers its fixtures started.

A cancelled CI job (SIGTERM), a closed terminal (SIGHUP) or a SIGKILL used to leave PostgreSQL,
the broker and the services running, and their CPU and ports slowed the next run. Here a pytest
of its own starts the session stack and is stopped while it holds it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from tests.conftest import ROOT, wait_until

# Holds the session stack until the outer test's signal ends it.
HOLDING_MODULE = """
import os
from pathlib import Path
from threading import Event


def test_holds_the_stack(stack):
    Path(os.environ["MERCH_TEST_HOLDING_FILE"]).touch()
    Event().wait(120)
"""


def living(processes: list[psutil.Process]) -> list[str]:
    """Those of `processes` still running: not gone, and not a zombie nobody has reaped yet."""
    found = []
    for proc in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(f"{proc.pid} {' '.join(proc.cmdline())[:80]}")
    return found


def pytest_output(tmp_path: Path) -> str:
    return (tmp_path / "pytest.out").read_text()


@pytest.mark.parametrize(
    ("signum", "exit_code"),
    [
        # As after Ctrl-C: interrupted (pytest's exit code 2), the fixtures torn down.
        pytest.param(signal.SIGTERM, pytest.ExitCode.INTERRUPTED, id="SIGTERM"),
        pytest.param(signal.SIGHUP, pytest.ExitCode.INTERRUPTED, id="SIGHUP"),
        # No teardown at all: the watchdog of die_with_parent takes the servers along.
        pytest.param(signal.SIGKILL, -signal.SIGKILL, id="SIGKILL"),
    ],
)
def test_a_stopped_test_run_leaves_no_server_behind(
    tmp_path: Path, signum: signal.Signals, exit_code: int
) -> None:
    # given a pytest whose session fixtures run PostgreSQL, the broker and the three services
    (tmp_path / "test_holding.py").write_text(HOLDING_MODULE)
    holding_file = tmp_path / "holding"
    argv = [sys.executable, "-m", "pytest", str(tmp_path / "test_holding.py")]
    argv += ["-c", str(ROOT / "pyproject.toml"), "-p", "tests.conftest", "-p", "no:cacheprovider"]
    argv += ["--basetemp", str(tmp_path / "inner")]
    started: list[psutil.Process] = []
    with (tmp_path / "pytest.out").open("w") as output:
        run = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=dict(os.environ, MERCH_TEST_HOLDING_FILE=str(holding_file)),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )

    def holding() -> bool:
        assert run.poll() is None, pytest_output(tmp_path)
        return holding_file.exists()

    try:
        wait_until(holding, timeout=60, message="the inner pytest never started its stack")
        # Every descendant: postgres's backends and a gateway's workers as well as the servers.
        started = psutil.Process(run.pid).children(recursive=True)

        # when the run is stopped from outside
        run.send_signal(signum)
        code = run.wait(timeout=30)

        # then everything it started has gone with it
        with contextlib.suppress(AssertionError):
            wait_until(lambda: not living(started), timeout=10, message="")
        assert living(started) == []
        assert code == exit_code, pytest_output(tmp_path)
    finally:
        run.kill()  # a no-op once it has been waited for
        for proc in started:
            with contextlib.suppress(psutil.Error):
                proc.kill()  # psutil checks that the pid still names the process it found
        run.wait(timeout=10)
