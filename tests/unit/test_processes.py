"""ManagedProcess and the port helpers: prefixed output, escalation to SIGKILL, no orphans."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import ClassVar

import grpc
import psutil
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from scripts.processes import ManagedProcess, PortInUseError, ensure_port_free, free_port
from tests.conftest import FAKE_SERVER_OPTIONS

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

    # then the watchdog kills the sleeper too (it may linger as a zombie if nobody reaps it)
    _, alive = psutil.wait_procs([child], timeout=5)
    assert all(proc.status() == psutil.STATUS_ZOMBIE for proc in alive)


ANSWER_SIGUSR1 = (
    "import signal; signal.signal(signal.SIGUSR1, lambda *_: print('alive', flush=True)); "
    "print('ready', flush=True)\nwhile True: signal.pause()"
)


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads a thread's /proc entry")
def test_a_die_with_parent_child_outlives_the_thread_that_started_it() -> None:
    # given a parent whose short-lived thread starts a child with die_with_parent, as
    # asyncio.to_thread(broker.start) does
    parent_code = (
        "import sys, threading; from scripts.processes import ManagedProcess; "
        f"p = ManagedProcess('child', [sys.executable, '-c', {ANSWER_SIGUSR1!r}], "
        "prefix=False, die_with_parent=True); "
        "t = threading.Thread(target=p.start); t.start(); t.join(); "
        "print(p.pid, t.native_id, flush=True); p.wait()"
    )
    parent = subprocess.Popen(python(parent_code), stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert parent.stdout is not None
    try:
        lines = [parent.stdout.readline(), parent.stdout.readline()]
        assert "ready\n" in lines, f"the child died, or never got ready: {lines}"
        child, thread = map(int, next(line for line in lines if line != "ready\n").split())

        # when that thread has ended (prctl(PR_SET_PDEATHSIG) had the kernel kill the child then)
        deadline = time.monotonic() + 10
        while Path(f"/proc/{parent.pid}/task/{thread}").exists():
            assert time.monotonic() < deadline, "the starting thread never ended"
            time.sleep(0.01)

        # then the child still answers
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGUSR1)
        assert parent.stdout.readline() == "alive\n"
    finally:
        parent.kill()
        parent.wait(10)


async def test_die_with_parent_children_start_while_grpc_is_busy_in_other_threads() -> None:
    # given a gRPC server in this process, its threads kept busy by callers
    server = grpc.aio.server(options=FAKE_SERVER_OPTIONS)
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    busy = True

    async def call_without_pause() -> None:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while busy:
                await stub.Check(health_pb2.HealthCheckRequest(), timeout=5)

    callers = [asyncio.create_task(call_without_pause()) for _ in range(4)]
    codes: list[int | None] = []
    try:
        # when children are started with die_with_parent meanwhile
        for _ in range(50):
            proc = ManagedProcess("true", ["true"], output=io.StringIO(), die_with_parent=True)
            proc.start()
            codes.append(await asyncio.to_thread(proc.wait, 10))
            proc.stop()
    finally:
        busy = False
        await asyncio.gather(*callers)
        await server.stop(0)

    # then every one of them ran: Python code between fork and exec (a preexec_fn) met gRPC's
    # state half-way through a call in the child and crashed some (SIGSEGV, SIGABRT)
    assert codes == [0] * 50


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
