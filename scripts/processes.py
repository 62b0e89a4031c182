"""Child processes of the development stack: own process group, output prefixed with a name."""

from __future__ import annotations

import collections
import contextlib
import os
import pwd
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, TextIO

import httpx

from scripts.watchdog import WATCHDOG

_TAIL_LINES = 40
_READER_JOIN_S = 2.0
_KILL_WAIT_S = 2.0
_STATE_WAIT_S = 2.0
# Several children share one terminal; a lock keeps their lines whole.
_OUTPUT_LOCK = threading.Lock()


class PortInUseError(RuntimeError):
    """A TCP port the stack is about to listen on is already taken."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        super().__init__(f"port {port} is already in use on {host}")
        self.port = port
        self.host = host


def emit(line: str, output: TextIO | None = None) -> None:
    """Write one whole line to `output` (default: our stdout), never mixed with a child's line."""
    out = output if output is not None else sys.stdout
    # A closed or broken stream must not kill the thread relaying a child's output.
    with _OUTPUT_LOCK, contextlib.suppress(ValueError, OSError):
        out.write(line + "\n")
        out.flush()


def describe_exit(code: int) -> str:
    """`exited with code 1` or `was killed by SIGKILL`, from a Popen return code."""
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


_HANDED_OUT: set[int] = set()
_HANDED_OUT_LOCK = threading.Lock()


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free right now, as chosen by the kernel, and that this process
    has not handed out before. The kernel may offer a port again before the server it was
    given to listens on it: two services of one stack would get one port, and gRPC servers
    (SO_REUSEPORT) would both bind it without a word, each taking half the connections."""
    with _HANDED_OUT_LOCK:
        for _ in range(1000):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind((host, 0))
                port: int = sock.getsockname()[1]
            if port not in _HANDED_OUT:
                _HANDED_OUT.add(port)
                return port
    raise RuntimeError("no TCP port left that this process has not handed out already")


def answers_ready(response: httpx.Response) -> bool:
    """/readyz says 200 and names every dependency SERVING: what make run, the test stack and
    the bench wait for. A gateway is 200 ("degraded") without its logging service, whose
    records would only spool; an app naming no dependency (the bench's baseline) is ready at
    200."""
    if response.status_code != 200:
        return False
    try:
        states = response.json().get("dependencies", {})
    except (ValueError, AttributeError):
        return False
    return all(state == "SERVING" for state in states.values())


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on `host:port` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Like the servers themselves: ignore TIME_WAIT leftovers, still clash with a listener.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def ensure_port_free(port: int, host: str = "127.0.0.1") -> None:
    """Raise `PortInUseError` unless `host:port` is free."""
    if not port_is_free(port, host):
        raise PortInUseError(port, host)


class ManagedProcess:
    """One child process in its own process group, its output streamed line by line.

    Each line the child writes (stdout and stderr) is written to `output` (default: our
    stdout) as `[name] line`; `prefix=False` writes it unchanged. The own process group
    means a terminal Ctrl-C reaches only us, so we decide the order of shutdown.

        proc = ManagedProcess("gateway", [sys.executable, "-m", "gateway"], env=env)
        proc.start()
        ...
        proc.stop(timeout=5)   # SIGTERM, then SIGKILL to the whole group
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        user: str | None = None,
        output: TextIO | None = None,
        prefix: bool = True,
        stop_signal: signal.Signals = signal.SIGTERM,
        die_with_parent: bool = False,
        on_exit: Callable[[ManagedProcess], None] | None = None,
    ) -> None:
        """`user` (root only) runs the child as that system user. `die_with_parent` has a
        watchdog kill the child's process group when this process is gone, even by SIGKILL
        (scripts.watchdog). `on_exit` is called from a background thread once the child has
        exited."""
        self.name = name
        self.argv = list(argv)
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.user = user
        self.output = output
        self.prefix = prefix
        self.stop_signal = stop_signal
        self.die_with_parent = die_with_parent
        self.on_exit = on_exit
        self._popen: subprocess.Popen[bytes] | None = None
        self._exited = threading.Event()
        self._tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
        self._reader: threading.Thread | None = None

    @property
    def pid(self) -> int:
        """The child's pid, which is also its process group id."""
        if self._popen is None:
            raise RuntimeError(f"{self.name} has not been started")
        return self._popen.pid

    @property
    def returncode(self) -> int | None:
        """The exit code (negative: killed by that signal), or None while running."""
        return self._popen.returncode if self._exited.is_set() and self._popen else None

    @property
    def running(self) -> bool:
        """Started and not yet exited."""
        return self._popen is not None and not self._exited.is_set()

    def tail(self) -> list[str]:
        """The last lines the child wrote, for error messages."""
        return list(self._tail)

    def start(self) -> None:
        """Spawn the child and the threads that relay its output and notice its exit."""
        if self._popen is not None:
            raise RuntimeError(f"{self.name} was already started")
        uid = gid = None
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            uid, gid = entry.pw_uid, entry.pw_gid
        self._popen = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            user=uid,
            group=gid,
            extra_groups=[] if uid is not None else None,
        )
        if self.die_with_parent:
            WATCHDOG.watch(self._popen.pid)
        stream = self._popen.stdout
        assert stream is not None
        self._reader = threading.Thread(
            target=self._relay, args=(stream,), name=f"{self.name}-output", daemon=True
        )
        self._reader.start()
        threading.Thread(target=self._watch, name=f"{self.name}-exit", daemon=True).start()

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait up to `timeout` seconds for the child to exit; its exit code, or None."""
        self._exited.wait(timeout)
        return self.returncode

    def stop(self, timeout: float = 10.0) -> int | None:
        """Send the stop signal; SIGKILL the whole group if it is still running after `timeout`."""
        if self._popen is None:
            return None
        if not self._exited.is_set():
            with contextlib.suppress(ProcessLookupError):
                self._popen.send_signal(self.stop_signal)
            # A paused child would sit on the stop signal forever.
            self._signal_group(signal.SIGCONT)
            self._exited.wait(timeout)
        # Also kills whatever the child left behind in its process group.
        self._signal_group(signal.SIGKILL)
        self._exited.wait(_KILL_WAIT_S)
        if self._reader is not None:
            self._reader.join(_READER_JOIN_S)
        return self.returncode

    def pause(self) -> None:
        """Freeze the whole process group (SIGSTOP), as a hung server would look.

        Returns once the kernel reports the child stopped, so a test can rely on it."""
        self._signal_group(signal.SIGSTOP)
        self._await_state(stopped=True)

    def resume(self) -> None:
        """Let a paused process group run again (SIGCONT)."""
        self._signal_group(signal.SIGCONT)
        self._await_state(stopped=False)

    def _await_state(self, *, stopped: bool) -> None:
        """Wait (Linux: via procfs) until the child is, or is no longer, stopped."""
        if self._popen is None:
            return
        stat = Path(f"/proc/{self._popen.pid}/stat")
        deadline = time.monotonic() + _STATE_WAIT_S
        while time.monotonic() < deadline:
            try:
                # The state follows the parenthesised command name, which may contain spaces.
                state = stat.read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                return  # gone, or no procfs: nothing to wait for
            if (state in ("T", "t")) == stopped:
                return
            self._exited.wait(0.005)

    def _signal_group(self, signum: signal.Signals) -> None:
        if self._popen is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._popen.pid, signum)

    def _relay(self, stream: IO[bytes]) -> None:
        with stream:
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                self._tail.append(line)
                emit(f"[{self.name}] {line}" if self.prefix else line, self.output)

    def _watch(self) -> None:
        assert self._popen is not None
        self._popen.wait()
        if self.die_with_parent:
            WATCHDOG.forget(self._popen.pid)
        self._exited.set()
        if self.on_exit is not None:
            self.on_exit(self)
