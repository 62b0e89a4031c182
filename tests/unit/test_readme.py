"""The README's configuration table is the settings classes, rendered."""

from __future__ import annotations

from scripts.config_table import DESCRIPTIONS, README, rows, updated


def test_every_setting_has_a_description() -> None:
    assert set(rows()) <= set(DESCRIPTIONS), set(rows()) - set(DESCRIPTIONS)


def test_readme_configuration_table_is_current() -> None:
    readme = README.read_text(encoding="utf-8")

    assert updated(readme) == readme, "README.md's configuration table is stale: run `make readme`"


def test_readme_shows_the_two_commands() -> None:
    readme = README.read_text(encoding="utf-8")

    assert "make run" in readme
    assert "make test" in readme
