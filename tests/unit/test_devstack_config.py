"""`make run`'s own variables: a value it cannot use stops it with one line naming it."""

from __future__ import annotations

import pytest

from scripts.devstack import DevstackConfig


@pytest.mark.parametrize("value", ["soon", "nan", "inf", "-5", "0", ""])
def test_a_ready_timeout_that_is_no_number_of_seconds_is_refused(value: str) -> None:
    # given a MERCH_READY_TIMEOUT make run cannot wait for: NaN or infinity would wait for
    # ever, zero or less would give up before the first check
    # when make run reads its configuration; then it refuses, naming the variable
    with pytest.raises(ValueError, match="MERCH_READY_TIMEOUT"):
        DevstackConfig.from_env({"MERCH_READY_TIMEOUT": value})


def test_a_ready_timeout_in_seconds_is_taken() -> None:
    assert DevstackConfig.from_env({"MERCH_READY_TIMEOUT": "2.5"}).ready_timeout_s == 2.5
    assert DevstackConfig.from_env({}).ready_timeout_s == 90
