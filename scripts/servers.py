"""What the development servers share: a managed child, a readiness wait, stop/pause/resume."""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Self, TextIO

from scripts.processes import ManagedProcess, describe_exit

_PROBE_INTERVAL_S = 0.1


class ServerStartError(RuntimeError):
    """A server exited, or never became ready, while starting."""

    def __init__(self, name: str, reason: str, output: list[str]) -> None:
        last = "\n".join(f"  {line}" for line in output[-15:])
        super().__init__(f"{name} {reason}" + (f"; its last output:\n{last}" if last else ""))
        self.name = name
        self.reason = reason


def wait_ready(process: ManagedProcess, probe: Callable[[], bool], timeout: float) -> None:
    """Probe until it succeeds; fail early if the process exits, or at the deadline."""
    deadline = time.monotonic() + timeout
    while not probe():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ServerStartError(
                process.name, f"was not ready within {timeout:g} s", process.tail()
            )
        # Waiting on the exit is the pause between probes: a crash ends it at once.
        code = process.wait(min(_PROBE_INTERVAL_S, remaining))
        if code is not None:
            raise ServerStartError(process.name, describe_exit(code), process.tail())


class ChildServer:
    """What both servers share: one ManagedProcess, stop/pause/resume, use as a context manager."""

    def __init__(self, output: TextIO | None, prefix: bool, die_with_parent: bool) -> None:
        self._output = output
        self._prefix = prefix
        self._die_with_parent = die_with_parent
        self._process: ManagedProcess | None = None

    def _spawn(
        self,
        name: str,
        argv: list[str],
        *,
        cwd: Path | None = None,
        user: str | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
        output: TextIO | None = None,
        env: dict[str, str] | None = None,
    ) -> ManagedProcess:
        """Start a child with this server's output and lifetime options."""
        process = ManagedProcess(
            name,
            argv,
            env=env,
            cwd=cwd,
            user=user,
            output=output if output is not None else self._output,
            prefix=self._prefix,
            stop_signal=stop_signal,
            die_with_parent=self._die_with_parent,
        )
        process.start()
        return process

    def start(self, timeout: float = 30.0) -> None:
        """Start the server and return once it accepts clients."""
        raise NotImplementedError

    def _output_is_terminal(self) -> bool:
        out = self._output if self._output is not None else sys.stdout
        try:
            return out.isatty()
        except (ValueError, OSError):
            return False

    @property
    def pid(self) -> int:
        """The server's pid (also its process group id)."""
        if self._process is None:
            raise RuntimeError(f"{type(self).__name__} has not been started")
        return self._process.pid

    @property
    def process(self) -> ManagedProcess | None:
        """The managed child, once started."""
        return self._process

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server: its graceful signal, then SIGKILL after `timeout` seconds."""
        if self._process is not None:
            self._process.stop(timeout)

    def pause(self) -> None:
        """Freeze the server (SIGSTOP), for fault-injection tests."""
        if self._process is not None:
            self._process.pause()

    def resume(self) -> None:
        """Unfreeze a paused server (SIGCONT)."""
        if self._process is not None:
            self._process.resume()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
