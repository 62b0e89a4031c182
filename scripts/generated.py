"""Write a generated file, or with `check` only report whether the committed one is stale."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def write_or_check(path: Path, text: str, *, check: bool, command: str) -> int:
    """Exit status for `python -m scripts.X [--check]`: 1 when `check` finds `path` stale."""
    if check:
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != text:
            print(f"{path.relative_to(ROOT)} is stale: run `{command}`", file=sys.stderr)
            return 1
        return 0
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return 0
