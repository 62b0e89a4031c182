"""Several worker processes of one service on one port, supervised by the process that started them.

    python -m gateway            # GATEWAY_WORKERS=4: this process supervises, four serve
    python -m db_service         # DB_SERVICE_WORKERS=auto: one worker per usable core

Each worker is the same program started again with `WORKER_INDEX` set (0, 1, …); it binds the
service's port itself with SO_REUSEPORT, so the kernel spreads new connections over the workers.
The supervisor restarts a worker that dies, relays SIGTERM/SIGINT to all of them and waits for
their graceful stop, and points them at one PROMETHEUS_MULTIPROC_DIR so that any worker's
metrics endpoint reports the sum over all of them (prometheus-client's multiprocess mode).

Shared by the gateway and db_service, so it lives in `plumbing`, the one package both may import.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

from prometheus_client import multiprocess
from pydantic import BeforeValidator, Field

from plumbing.cpus import cores

WORKER_INDEX = "WORKER_INDEX"
# The supervisor's pid, in each worker's environment: die_with_supervisor() checks it.
SUPERVISOR_PID = "WORKER_SUPERVISOR_PID"
MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
# A worker that exits with this code found the configuration invalid: so would its restart.
EXIT_BAD_CONFIG = 2
# After the grace period: what a worker gets for closing its pool and flushing its log.
STOP_MARGIN_S = 5.0
_POLL_S = 0.2
_RESTART_BACKOFF_MIN_S = 0.5
_RESTART_BACKOFF_MAX_S = 10.0
# A worker that served this long before dying is restarted at once, not after a backoff.
_HEALTHY_UPTIME_S = 30.0
_PR_SET_PDEATHSIG = 1


def _worker_count(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() == "auto":
        return cores()
    return value


# A settings field: a number of workers, or `auto` for one per core this process may keep busy
# (its cpuset, capped by a container's CPU quota: plumbing.cpus).
WorkerCount = Annotated[int, BeforeValidator(_worker_count), Field(ge=1, le=256)]


@dataclass
class _Worker:
    index: int
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    backoff_s: float = 0.0
    restart_at: float = 0.0


@dataclass
class WorkerPool:
    """Runs `count` copies of `argv` and keeps them running until SIGTERM or SIGINT.

    pool = WorkerPool("gateway", [sys.executable, "-m", "gateway"], count=2,
                      env=os.environ, grace_s=5.0)
    sys.exit(pool.run())
    """

    name: str
    argv: Sequence[str]
    count: int
    env: Mapping[str, str]
    grace_s: float
    # Called with the metrics directory once it exists (db_service serves its port from here).
    on_started: Callable[[Path], None] | None = None
    # (host, port) the workers will share: refused at start when something listens there.
    address: tuple[str, int] | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _exit_code: int = 0

    def run(self) -> int:
        """Start the workers, supervise them, stop them all; the exit code for the parent."""
        taken = _taken(self.address) if self.address is not None else None
        if taken is not None:
            # Workers bind with SO_REUSEPORT: next to another instance's workers, which set it
            # too, they would silently take a share of its connections instead of failing.
            self._say(f"refusing to start: {taken}")
            return 1
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._on_signal)
        metrics_dir = self._metrics_dir()
        workers = [_Worker(i) for i in range(self.count)]
        try:
            for worker in workers:
                self._spawn(worker, metrics_dir)
            self._say(f"{self.count} workers started (pids {self._pids(workers)})")
            if self.on_started is not None:
                self.on_started(metrics_dir)
            while not self._stop.wait(_POLL_S):
                for worker in workers:
                    self._tend(worker, metrics_dir)
        finally:
            self._stop_all(workers)
            if self.env.get(MULTIPROC_DIR) is None:
                shutil.rmtree(metrics_dir, ignore_errors=True)
        return self._exit_code

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stop.set()

    def _metrics_dir(self) -> Path:
        given = self.env.get(MULTIPROC_DIR)
        if given is None:
            # Named with our pid: a supervisor SIGKILLed cannot remove its own, so the next
            # one removes those whose supervisor is gone.
            prefix = f"{self.name}-metrics-"
            for stale in Path(tempfile.gettempdir()).glob(f"{prefix}*-*"):
                pid = stale.name.removeprefix(prefix).partition("-")[0]
                if pid.isdigit() and not _alive(int(pid)):
                    shutil.rmtree(stale, ignore_errors=True)
            return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-"))
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        # Files of an earlier run would be summed into this one's counters.
        for stale in path.glob("*.db"):
            stale.unlink()
        return path

    def _spawn(self, worker: _Worker, metrics_dir: Path) -> None:
        env = {
            **self.env,
            WORKER_INDEX: str(worker.index),
            MULTIPROC_DIR: str(metrics_dir),
            SUPERVISOR_PID: str(os.getpid()),
        }
        # The workers stay in our process group: whoever stops the group stops them too. No
        # preexec_fn: Python run between fork and exec can deadlock or crash a child of a
        # process with threads (db_service's supervisor serves its metrics from one, and
        # restarts workers meanwhile); each worker calls die_with_supervisor() itself.
        worker.process = subprocess.Popen(list(self.argv), env=env, stdin=subprocess.DEVNULL)
        worker.started = time.monotonic()

    def _tend(self, worker: _Worker, metrics_dir: Path) -> None:
        """Notice a dead worker and restart it, after a backoff if it keeps dying young."""
        process = worker.process
        now = time.monotonic()
        if process is not None:
            code = process.poll()
            if code is None:
                return
            multiprocess.mark_process_dead(process.pid, str(metrics_dir))  # type: ignore[no-untyped-call]
            worker.process = None
            if code == EXIT_BAD_CONFIG:
                self._say(f"worker {worker.index} refused its configuration; stopping")
                self._exit_code = EXIT_BAD_CONFIG
                self._stop.set()
                return
            young = now - worker.started < _HEALTHY_UPTIME_S
            worker.backoff_s = (
                min(max(worker.backoff_s * 2, _RESTART_BACKOFF_MIN_S), _RESTART_BACKOFF_MAX_S)
                if young
                else 0.0
            )
            worker.restart_at = now + worker.backoff_s
            self._say(
                f"worker {worker.index} (pid {process.pid}) {_describe(code)}; "
                f"restarting it in {worker.backoff_s:g} s"
            )
        if now >= worker.restart_at:
            self._spawn(worker, metrics_dir)
            assert worker.process is not None
            self._say(f"worker {worker.index} restarted (pid {worker.process.pid})")

    def _stop_all(self, workers: list[_Worker]) -> None:
        """SIGTERM every worker, wait for the graceful stops, then SIGKILL what is left."""
        running = [w.process for w in workers if w.process is not None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace_s + STOP_MARGIN_S
        for process in running:
            try:
                process.wait(max(deadline - time.monotonic(), 0.0))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def _pids(self, workers: list[_Worker]) -> str:
        return ", ".join(str(w.process.pid) for w in workers if w.process is not None)

    def _say(self, line: str) -> None:
        print(f"{self.name}: {line}", file=sys.stderr, flush=True)


def _taken(address: tuple[str, int]) -> str | None:
    """Why nothing may listen on `address` now (something else does), or None when it is free."""
    host, port = address
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # A connection of an earlier run in TIME_WAIT does not make the port taken.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return f"cannot listen on {address[0]}:{port}: {exc.strerror or exc}"
    return None


def _describe(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


def _alive(pid: int) -> bool:
    """Whether a process `pid` exists (one of another user's counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def die_with_supervisor() -> None:
    """In a worker: ask Linux to SIGKILL this process when its supervisor dies, even by SIGKILL.

    Called by the worker once it runs (gateway and db_service call it first thing), not between
    fork and exec. A supervisor that died before the call is no longer this process's parent:
    the worker then exits at once, as it would have been killed. Does nothing outside a
    supervisor's worker (no WORKER_SUPERVISOR_PID) or off Linux.
    """
    supervisor = os.environ.get(SUPERVISOR_PID, "")
    if not supervisor.isdigit() or not sys.platform.startswith("linux"):
        return
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != int(supervisor):
        os._exit(1)
