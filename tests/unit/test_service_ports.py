"""logging_service started on a port something else listens on says so in one line and exits."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _run(module: str, **variables: str) -> subprocess.CompletedProcess[str]:
    """`python -m module` in development mode with `variables`, until it exits."""
    env = {**os.environ, "MERCH_ENV": "development", **variables}
    return subprocess.run(
        [sys.executable, "-m", module],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port another program listens on."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def test_logging_service_on_a_taken_port_exits_with_one_line_saying_so(taken_port: int) -> None:
    # given a port in use; when the service is started on it
    result = _run(
        "logging_service",
        LOGGING_SERVICE_LISTEN=f"127.0.0.1:{taken_port}",
        KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1",
        LOGGING_METRICS_PORT="0",
    )

    # then it stops with an error naming the address, and no traceback
    assert result.returncode == 1, result.stderr
    assert f"cannot listen on 127.0.0.1:{taken_port}" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("module", "variables"),
    [
        ("gateway", {"GATEWAY_WORKERS": "2", "GATEWAY_PORT": "{port}"}),
        ("db_service", {"DB_SERVICE_WORKERS": "2", "DB_SERVICE_LISTEN": "127.0.0.1:{port}"}),
    ],
)
def test_workers_do_not_join_another_instance_s_port(
    module: str, variables: dict[str, str]
) -> None:
    # given a port that another instance's worker listens on, with SO_REUSEPORT as workers do
    with socket.socket() as worker:
        worker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        worker.bind(("127.0.0.1", 0))
        worker.listen()
        port = worker.getsockname()[1]

        # when a service with two workers is started on that port
        result = _run(
            module, **{name: value.format(port=port) for name, value in variables.items()}
        )

    # then its supervisor refuses in one line, before any worker silently shares the port
    assert result.returncode == 1, result.stderr
    assert f"refusing to start: cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "workers started" not in result.stderr
