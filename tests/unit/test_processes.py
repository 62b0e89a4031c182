"""ManagedProcess and the port helpers: prefixed output, escalation to SIGKILL, no orphans."""

from __future__ import annotations

import io
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import ClassVar

import psutil
import pytest

from scripts.processes import ManagedProcess, PortInUseError, ensure_port_free, free_port

REPO = Path(__file__).resolve().parents[2]
IGNORE_SIGTERM = (
    "import signal, sys; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('ready', flush=True); signal.pause()"
)


def python(code: str) -> list[str]:
    return [sys.executable, "-u", "-c", code]


def wait_for_output(proc: ManagedProcess, text: str, timeout: float = 10.0) -> None:
    """Wait until the child has written a line containing `text`."""
    deadline = time.monotonic() + timeout
    while not any(text in line for line in proc.tail()):
        assert time.monotonic() < deadline, f"no {text!r} in {proc.tail()}"
        assert proc.wait(0.02) is None, f"exited early: {proc.tail()}"


def test_output_is_relayed_line_by_line_with_the_name_as_prefix() -> None:
    out = io.StringIO()
    proc = ManagedProcess(
        "echo", python("import sys; print('hi'); print('oops', file=sys.stderr)"), output=out
    )

    proc.start()
    code = proc.wait(10)
    proc.stop()

    assert code == 0
    assert out.getvalue().splitlines() == ["[echo] hi", "[echo] oops"]


def test_output_without_prefix_is_unchanged() -> None:
    out = io.StringIO()
    proc = ManagedProcess("echo", python("print('hi')"), output=out, prefix=False)

    proc.start()
    proc.wait(10)
    proc.stop()

    assert out.getvalue() == "hi\n"


def test_stop_kills_a_child_that_ignores_sigterm_after_the_timeout() -> None:
    proc = ManagedProcess("stubborn", python(IGNORE_SIGTERM), output=io.StringIO())
    proc.start()
    wait_for_output(proc, "ready")

    started = time.monotonic()
    code = proc.stop(timeout=0.5)

    assert code == -signal.SIGKILL
    assert 0.5 <= time.monotonic() - started < 3


def test_pause_freezes_and_resume_thaws_the_child() -> None:
    proc = ManagedProcess(
        "sleeper", python("print('ready'); import time; time.sleep(60)"), output=io.StringIO()
    )
    proc.start()
    wait_for_output(proc, "ready")

    proc.pause()
    paused = psutil.Process(proc.pid).status()
    proc.resume()
    resumed = psutil.Process(proc.pid).status()
    proc.stop(timeout=5)

    assert paused == psutil.STATUS_STOPPED
    assert resumed != psutil.STATUS_STOPPED


def test_stop_reaches_a_paused_child() -> None:
    proc = ManagedProcess(
        "sleeper", python("print('ready'); import time; time.sleep(60)"), output=io.StringIO()
    )
    proc.start()
    wait_for_output(proc, "ready")
    proc.pause()

    code = proc.stop(timeout=5)

    assert code == -signal.SIGTERM


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="prctl(PR_SET_PDEATHSIG) is Linux-only"
)
def test_a_child_started_with_die_with_parent_dies_when_its_parent_is_killed() -> None:
    # given a parent that starts a long sleeper with die_with_parent and is then SIGKILLed
    parent_code = (
        "import sys; from scripts.processes import ManagedProcess; "
        "p = ManagedProcess('sleeper', [sys.executable, '-c', 'import time; time.sleep(60)'], "
        "die_with_parent=True); p.start(); print(p.pid, flush=True); p.wait()"
    )
    parent = subprocess.Popen(python(parent_code), stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert parent.stdout is not None
    child = psutil.Process(int(parent.stdout.readline()))

    parent.kill()
    parent.wait(10)

    # then the kernel kills the sleeper too (it may linger as a zombie if nobody reaps it)
    _, alive = psutil.wait_procs([child], timeout=5)
    assert all(proc.status() == psutil.STATUS_ZOMBIE for proc in alive)


def test_a_listening_port_is_reported_in_use_by_number() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        with pytest.raises(PortInUseError, match=f"port {port} "):
            ensure_port_free(port)


def test_a_free_port_passes_the_check() -> None:
    ensure_port_free(free_port())


class _KernelOfferingAgain:
    """A socket whose bind to port 0 gets the ports of `offers` in turn (the kernel is free
    to offer one again once the socket that had it is closed)."""

    offers: ClassVar[list[int]] = []

    def __init__(self, *args: object) -> None:
        self.port = 0

    def __enter__(self) -> _KernelOfferingAgain:
        return self

    def __exit__(self, *args: object) -> None:
        return None

    def bind(self, address: tuple[str, int]) -> None:
        self.port = self.offers.pop(0)

    def getsockname(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)


def test_free_port_never_hands_out_one_port_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    # given a kernel that offers a port again right after it was handed out (the session stack
    # once gave db_service and logging_service one port, and both gRPC servers bound it)
    first = free_port()
    _KernelOfferingAgain.offers = [first, first, 1]  # 1: a port no test is ever given
    monkeypatch.setattr(socket, "socket", _KernelOfferingAgain)

    # when a port is asked for again; then it is one not handed out before
    assert free_port() == 1
