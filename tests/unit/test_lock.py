"""uv.lock is the only source of installed versions, and it still matches pyproject.toml."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from uv import find_uv_bin

from scripts.lock import BOOTSTRAP, LOCK, bootstrap_text

ROOT = Path(__file__).resolve().parents[2]
SUPPORTED_PYTHONS = ("311", "312", "313")
SUPPORTED_MACHINES = ("x86_64", "aarch64")


def _uv_lock_check(project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [find_uv_bin(), "lock", "--check", "--offline", "--project", str(project)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_lock_matches_pyproject() -> None:
    result = _uv_lock_check(ROOT)

    assert result.returncode == 0, f"uv.lock is stale: run `make lock`\n{result.stderr}"


def test_the_check_fails_when_pyproject_gains_a_dependency(tmp_path: Path) -> None:
    # given a copy of the project whose pyproject.toml asks for a package the lock lacks
    for name in ("pyproject.toml", "uv.lock", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    pyproject = tmp_path / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    pyproject.write_text(text.replace('    "pyyaml>=6.0",\n', '    "pyyaml>=6.0",\n    "attrs",\n'))

    # then the same check refuses it
    assert _uv_lock_check(tmp_path).returncode != 0


def test_the_bootstrap_installer_is_the_locked_one() -> None:
    assert BOOTSTRAP.read_text(encoding="utf-8") == bootstrap_text(
        LOCK.read_text(encoding="utf-8")
    ), "requirements/bootstrap.txt is stale: run `make lock`"


def _wheel_fits(filename: str, python: str, machine: str) -> bool:
    """Whether a wheel installs on CPython `python` (e.g. "312") on Linux `machine` (glibc)."""
    pythons, abi, platform = filename.removesuffix(".whl").split("-")[-3:]
    if platform != "any" and not (machine in platform and "manylinux" in platform):
        return False
    tags = pythons.split(".")
    if abi == "none":
        return any(t in ("py3", "py2.py3", f"cp{python}") or t == "py2" for t in tags)
    if abi == "abi3":
        return any(t.startswith("cp3") and int(t[2:]) <= int(python) for t in tags)
    return f"cp{python}" in tags and abi == f"cp{python}"


def test_every_locked_package_has_a_wheel_for_every_supported_linux() -> None:
    # `uv sync --no-build` installs wheels only, so each pair needs one
    lock = tomllib.loads(LOCK.read_text(encoding="utf-8"))
    missing = [
        f"{package['name']} {package['version']} for cp{python} {machine}"
        for package in lock["package"]
        if package["name"] != "merch-store"
        for python in SUPPORTED_PYTHONS
        for machine in SUPPORTED_MACHINES
        if not any(
            _wheel_fits(wheel["url"].rsplit("/", 1)[1], python, machine)
            for wheel in package.get("wheels", [])
        )
    ]

    assert not missing


@pytest.mark.parametrize(
    ("filename", "python", "machine", "fits"),
    [
        ("orjson-3.11.5-cp312-cp312-manylinux_2_17_aarch64.whl", "312", "aarch64", True),
        ("orjson-3.11.5-cp312-cp312-manylinux_2_17_aarch64.whl", "311", "aarch64", False),
        ("orjson-3.11.5-cp312-cp312-musllinux_1_2_x86_64.whl", "312", "x86_64", False),
        ("cffi-2.0.0-cp39-abi3-manylinux_2_28_x86_64.whl", "313", "x86_64", True),
        ("idna-3.11-py3-none-any.whl", "311", "aarch64", True),
    ],
)  # fmt: skip
def test_wheel_compatibility_rule(filename: str, python: str, machine: str, fits: bool) -> None:
    assert _wheel_fits(filename, python, machine) is fits


INSTALL_FILES = ("Makefile", "Dockerfile", ".ci/run")


@pytest.mark.parametrize("name", INSTALL_FILES)
def test_every_install_step_reads_the_lock(name: str) -> None:
    text = re.sub(r"\\\n\s*", " ", (ROOT / name).read_text(encoding="utf-8"))
    commands = [line for line in text.splitlines() if not line.lstrip().startswith("#")]

    for line in commands:
        if re.search(r"\bpip3? install\b", line):
            assert "--require-hashes" in line, line
        if re.search(r"\buv (pip install|add)\b", line):
            raise AssertionError(f"resolves at install time: {line}")
        if re.search(r"\buv sync\b", line):
            assert "--frozen" in line, line
