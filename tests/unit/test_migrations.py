"""The migration files apply in one unambiguous order."""

from __future__ import annotations

import re
from pathlib import Path

MIGRATIONS = Path(__file__).resolve().parents[2] / "db_service" / "migrations"


def test_each_migration_has_its_own_number() -> None:
    # two branches once both added a 004_*.sql; the order between them was left to the names
    numbers = [re.match(r"(\d+)_", p.name) for p in sorted(MIGRATIONS.glob("*.sql"))]

    assert all(numbers)
    values = [int(m[1]) for m in numbers if m]
    assert values == list(range(1, len(values) + 1))
