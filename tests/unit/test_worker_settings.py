"""GATEWAY_WORKERS / DB_SERVICE_WORKERS: what they accept, and what a supervisor refuses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from db_service.settings import Settings as DBSettings
from gateway.settings import Settings as GatewaySettings
from plumbing.workers import cores

ROOT = Path(__file__).resolve().parents[2]
# Production is the default; a real-looking secret is all it needs here.
SECRET = {"jwt_secret": "s" * 40}


@pytest.mark.parametrize(
    ("settings", "field"),
    [(GatewaySettings, "gateway_workers"), (DBSettings, "db_service_workers")],
)
@pytest.mark.parametrize(("given", "expected"), [("auto", cores()), ("AUTO", cores()), ("3", 3)])
def test_workers_are_a_number_or_one_per_core(
    settings: type[GatewaySettings | DBSettings], field: str, given: str, expected: int
) -> None:
    assert getattr(settings(**SECRET, **{field: given}), field) == expected


@pytest.mark.parametrize("given", ["0", "-1", "many", "257"])
def test_nonsense_worker_counts_are_refused(given: str) -> None:
    with pytest.raises(ValidationError):
        GatewaySettings(**SECRET, gateway_workers=given)


def test_one_worker_is_the_default() -> None:
    assert GatewaySettings(**SECRET).gateway_workers == 1
    assert DBSettings(**SECRET).db_service_workers == 1


@pytest.mark.parametrize(
    ("module", "env", "message"),
    [
        ("gateway", {"GATEWAY_WORKERS": "2", "GATEWAY_PORT": "0"}, "needs a fixed GATEWAY_PORT"),
        (
            "db_service",
            {"DB_SERVICE_WORKERS": "2", "DB_SERVICE_LISTEN": "127.0.0.1:0"},
            "needs a fixed port",
        ),
    ],
)
def test_several_workers_on_port_0_are_refused(
    module: str, env: dict[str, str], message: str
) -> None:
    # given several workers and "any free port", which each worker would choose for itself
    # when the service starts
    result = subprocess.run(
        [sys.executable, "-m", module],
        env={"PATH": "/usr/bin:/bin", "MERCH_ENV": "development", **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    # then it refuses with one line, as for any invalid configuration
    assert result.returncode == 2
    assert message in result.stderr
