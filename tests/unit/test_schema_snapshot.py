"""schema.graphql is exactly the live schema's SDL, so every API change shows up as its diff."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gateway.export_schema import schema_sdl

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "schema.graphql"


def test_committed_schema_matches_the_live_schema() -> None:
    # given the SDL the gateway serves now
    live = schema_sdl()

    # when it is compared with the committed file
    committed = COMMITTED.read_text(encoding="utf-8")

    # then they are identical
    assert committed == live, "schema.graphql is stale: run `make schema` and commit the result"


def test_export_command_prints_the_sdl() -> None:
    # given the command `make schema` runs
    command = [sys.executable, "-m", "gateway.export_schema"]

    # when it runs
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)

    # then it prints the SDL and nothing else
    assert result.stdout == schema_sdl()
    assert "type Query" in result.stdout
