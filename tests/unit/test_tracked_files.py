"""What git tracks: no virtualenv, data directory, cache or secret, whatever form it takes (a
symlink to another checkout's virtualenv once got committed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Top-level names that are made by running the project, never written by hand.
MADE = (".venv", ".merch", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis")
MADE_ANYWHERE = ("__pycache__",)
SECRET_SUFFIXES = (".pem", ".key", ".env")


def tracked() -> list[str]:
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    out = subprocess.run(
        [git, "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    return [p for p in out.split("\0") if p]


def test_nothing_made_by_running_the_project_is_tracked() -> None:
    offending = [
        path
        for path in tracked()
        if path.split("/")[0] in MADE or any(part in MADE_ANYWHERE for part in path.split("/"))
    ]

    assert offending == []


def test_no_key_or_environment_file_is_tracked() -> None:
    offending = [p for p in tracked() if Path(p).name.endswith(SECRET_SUFFIXES)]

    assert offending == []
