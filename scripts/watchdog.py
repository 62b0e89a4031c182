"""A watchdog process that kills our children's process groups once this process is gone.

However this process ends, even by SIGKILL, the kernel closes its end of a pipe, and the
watchdog on the other end reads EOF. Unlike prctl(PR_SET_PDEATHSIG), nothing runs in the child
between fork and exec (Python code there, a preexec_fn, crashes children of a process whose
gRPC threads are busy), and it does not matter which thread started the child.

    WATCHDOG.watch(pid)    # kill pid's process group when we are gone...
    WATCHDOG.forget(pid)   # ...unless it has exited (its pid may be given to another)
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading

# Run with -I -S: only the standard library, whatever the environment says. Each line is
# "+pid" or "-pid"; a group is killed whole, as ManagedProcess.stop does.
_WATCHDOG = """
import os, signal, sys
groups = set()
for line in sys.stdin.buffer:
    pid = int(line[1:])
    if line.startswith(b"+"):
        groups.add(pid)
    else:
        groups.discard(pid)
for pid in groups:
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass
"""


class Watchdog:
    """The process groups to kill when this process is gone; the watchdog starts on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pipe: int | None = None
        self._owner = 0
        self._process: subprocess.Popen[bytes] | None = None

    def watch(self, pid: int) -> None:
        """Kill the process group `pid` leads once this process is gone."""
        self._send(f"+{pid}\n")

    def forget(self, pid: int) -> None:
        """The group `pid` has gone by itself: leave its pid alone, it may be reused."""
        self._send(f"-{pid}\n")

    def _send(self, line: str) -> None:
        with self._lock:
            # A fork of ours would share our watchdog, which is only ours to tell.
            if self._pipe is None or self._owner != os.getpid():
                self._pipe, self._owner = self._start(), os.getpid()
            # One write below PIPE_BUF is atomic; a dead watchdog can only be ignored.
            with contextlib.suppress(OSError):
                os.write(self._pipe, line.encode())

    def _start(self) -> int:
        read, write = os.pipe()  # neither end is inherited by the children we start later
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _WATCHDOG],
                stdin=read,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                # Out of our session: the signal that stops us (Ctrl-C at the terminal, a
                # closed terminal's SIGHUP, `timeout` signalling our group) must not stop it.
                start_new_session=True,
            )
        finally:
            os.close(read)
        return write


WATCHDOG = Watchdog()
