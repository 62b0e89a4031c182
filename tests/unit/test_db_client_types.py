"""mypy checks every call to db_service: the RPC, its request type and its reply type.

The snippets below are type-checked the way `make typecheck` checks gateway/ (mypy --strict with
the project's configuration), against the typed stubs in protos/*_pb2_grpc.pyi.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from mypy import api

ROOT = Path(__file__).resolve().parents[2]

PREAMBLE = """
import protos.db_service_pb2 as pb
from gateway.scope import RequestScope


async def check(scope: RequestScope) -> None:
"""

CALLS = {
    "a right call": (
        "user: pb.User = await scope.call(scope.db.stub.GetUser, pb.GetUserRequest())",
        False,
    ),
    "an RPC that does not exist": (
        "await scope.call(scope.db.stub.GetUzer, pb.GetUserRequest())",
        True,
    ),
    "another RPC's request": (
        "await scope.call(scope.db.stub.GetUser, pb.GetOrderRequest())",
        True,
    ),
    "a reply taken for another type": (
        "order: pb.Order = await scope.call(scope.db.stub.GetUser, pb.GetUserRequest())",
        True,
    ),
}


def _mypy(tmp_path: Path, line: str) -> str:
    source = tmp_path / "snippet.py"
    source.write_text(PREAMBLE + textwrap.indent(line, "    ") + "\n", encoding="utf-8")
    stdout, _, _ = api.run(
        [
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(ROOT / ".mypy_cache"),
            "--no-error-summary",
            str(source),
        ]
    )
    return stdout


@pytest.mark.parametrize("case", CALLS)
def test_mypy_checks_each_db_service_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    # given a call in the gateway's style
    line, wrong = CALLS[case]
    monkeypatch.chdir(ROOT)

    # when mypy checks it
    output = _mypy(tmp_path, line)

    # then a wrong RPC, request or reply is an error on the call's line, and nothing else is
    call_line = PREAMBLE.count("\n") + 1
    assert (f"snippet.py:{call_line}: error:" in output) is wrong, output
    assert output.count("error:") == int(wrong), output
