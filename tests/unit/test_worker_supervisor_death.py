"""A worker dies with its supervisor, however the supervisor ends, and nothing runs between fork
and exec to arrange it (a preexec_fn can deadlock or crash a child of a process with threads)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest

from plumbing import workers
from plumbing.workers import SUPERVISOR_PID, WorkerPool
from tests.unit.test_processes import REPO, python

WORKER = (
    "import os, time\n"
    "from plumbing.workers import die_with_supervisor\n"
    "die_with_supervisor()\n"
    "print(os.getpid(), flush=True)\n"
    "time.sleep(60)\n"
)
# A supervisor in miniature: starts WORKER as WorkerPool does (its pid in the environment, no
# preexec_fn), says the worker's pid, and waits to be killed.
SUPERVISOR = (
    "import os, subprocess, sys, time\n"
    f"env = {{**os.environ, {SUPERVISOR_PID!r}: str(os.getpid())}}\n"
    f"argv = [sys.executable, '-c', {WORKER!r}]\n"
    "worker = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE)\n"
    "print(worker.stdout.readline().decode().strip(), flush=True)\n"
    "time.sleep(60)\n"
)


def test_a_worker_is_started_without_python_between_fork_and_exec(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    started: dict[str, Any] = {}

    class Popen:
        def __init__(self, argv: list[str], **kwargs: Any) -> None:
            started.update(kwargs, argv=argv)

    monkeypatch.setattr(workers.subprocess, "Popen", Popen)
    pool = WorkerPool("gateway", ["prog"], count=1, env={"A": "1"}, grace_s=1.0)

    pool._spawn(workers._Worker(0), tmp_path)

    assert started.get("preexec_fn") is None
    assert started["env"][SUPERVISOR_PID] == str(os.getpid())
    assert started["env"]["A"] == "1"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_worker_dies_when_its_supervisor_is_killed() -> None:
    # given a supervisor and its worker, running
    supervisor = subprocess.Popen(python(SUPERVISOR), cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert supervisor.stdout is not None
        worker = psutil.Process(int(supervisor.stdout.readline()))

        # when the supervisor is SIGKILLed (it can do nothing about its workers)
        supervisor.kill()
        supervisor.wait(10)

        # then Linux kills the worker (it may linger as a zombie if nobody reaps it)
        _, alive = psutil.wait_procs([worker], timeout=10)
        assert all(proc.status() == psutil.STATUS_ZOMBIE for proc in alive)
    finally:
        supervisor.kill()
        supervisor.wait(10)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_worker_whose_supervisor_died_before_it_started_exits_at_once() -> None:
    code = "from plumbing.workers import die_with_supervisor\ndie_with_supervisor()\nprint('alive')"

    # a worker whose parent is not the supervisor it was told of (that one died first: the
    # worker was given to another parent)
    orphan = subprocess.run(
        python(code),
        cwd=REPO,
        env={**os.environ, SUPERVISOR_PID: "1"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    # and one whose supervisor (this process) is alive
    child = subprocess.run(
        python(code),
        cwd=REPO,
        env={**os.environ, SUPERVISOR_PID: str(os.getpid())},
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert (orphan.returncode, orphan.stdout) == (1, "")
    assert (child.returncode, child.stdout) == (0, "alive\n")
