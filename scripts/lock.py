"""Write requirements/bootstrap.txt, the hash-pinned uv that installs everything else, from uv.lock.

    python -m scripts.lock           # rewrite requirements/bootstrap.txt
    python -m scripts.lock --check   # exit 1 if it does not match uv.lock

`make lock` runs `uv lock` and then this. The bootstrap file exists because the installer itself
has to come from somewhere before uv can read uv.lock: pip installs it, hash-checked, from this
file, and the file is derived from the lock so the two can never name different versions.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

from scripts.generated import write_or_check

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "uv.lock"
BOOTSTRAP = ROOT / "requirements" / "bootstrap.txt"
INSTALLER = "uv"

HEADER = """\
# Generated from uv.lock by `make lock` (python -m scripts.lock): do not edit.
# The installer, hash-pinned, for `pip install --require-hashes --no-deps -r` in a new venv;
# it then installs every other package from uv.lock (`uv sync --frozen`).
"""


def bootstrap_text(lock_text: str) -> str:
    """The bootstrap requirements file for the installer version that `lock_text` pins."""
    lock = tomllib.loads(lock_text)
    (package,) = [p for p in lock["package"] if p["name"] == INSTALLER]
    hashes = sorted(wheel["hash"] for wheel in package["wheels"])
    lines = [f"{INSTALLER}=={package['version']}", *(f"    --hash={h}" for h in hashes)]
    return HEADER + " \\\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    text = bootstrap_text(LOCK.read_text(encoding="utf-8"))
    return write_or_check(BOOTSTRAP, text, check="--check" in argv, command="make lock")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
