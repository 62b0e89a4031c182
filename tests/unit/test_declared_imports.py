"""Every third-party module our code imports comes from a distribution pyproject.toml declares.

A module that is importable only because something else happens to pull it in (as `cross_web`
was, through Strawberry) breaks the day that something stops depending on it.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from functools import cache
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
FIRST_PARTY = {
    "gateway",
    "db_service",
    "logging_service",
    "plumbing",
    "protos",
    "scripts",
    "bench",
    "tests",
}

# Which declared sets each top-level folder may import from: the services ship with the runtime
# set alone; the development stack and the tools may add the `dev` extra; the tests add `test`.
ALLOWED_SETS = {
    "gateway": ("runtime",),
    "db_service": ("runtime",),
    "logging_service": ("runtime",),
    "plumbing": ("runtime",),
    "protos": ("runtime",),
    "scripts": ("runtime", "dev", "test"),
    "bench": ("runtime", "dev", "test"),
    "tests": ("runtime", "dev", "test"),
}
# Developer tools that live beside the runtime code but never run in the image.
TOOL_MODULES = {"protos/generate.py": ("runtime", "test")}


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _names(requirements: list[str]) -> set[str]:
    return {_normalize(re.split(r"[ <>=!~;\[]", r, maxsplit=1)[0]) for r in requirements}


DECLARED = {
    "runtime": _names(PYPROJECT["project"]["dependencies"]),
    **{k: _names(v) for k, v in PYPROJECT["project"]["optional-dependencies"].items()},
}


@cache
def _providers() -> dict[str, frozenset[str]]:
    return {m: frozenset(_normalize(d) for d in ds) for m, ds in packages_distributions().items()}


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module.split(".")[0])
    return modules - FIRST_PARTY - set(sys.stdlib_module_names)


def _sources() -> list[Path]:
    return sorted(
        p
        for folder in ALLOWED_SETS
        for p in (ROOT / folder).rglob("*.py")
        if not p.name.endswith(("_pb2.py", "_pb2_grpc.py"))
    )


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_each_import_is_declared(path: Path) -> None:
    relative = path.relative_to(ROOT).as_posix()
    sets = TOOL_MODULES.get(relative, ALLOWED_SETS[relative.split("/")[0]])
    allowed = set().union(*(DECLARED[s] for s in sets))
    undeclared = {
        module: sorted(_providers().get(module, {"(not installed)"}))
        for module in _imported_modules(path)
        if not allowed & _providers().get(module, frozenset())
    }

    assert not undeclared, f"{relative} imports undeclared distributions: {undeclared}"


def test_the_check_catches_a_transitive_import(tmp_path: Path) -> None:
    # graphql-core arrives through Strawberry; a module importing it must still declare it
    sample = tmp_path / "sample.py"
    sample.write_text("import graphql\nimport cross_web\nimport os\n", encoding="utf-8")

    assert _imported_modules(sample) == {"graphql", "cross_web"}
    assert {"graphql-core", "cross-web"} <= DECLARED["runtime"]
    assert "python-dateutil" not in DECLARED["runtime"]
