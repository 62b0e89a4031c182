"""bench.sidebyside: what a variant may say, and how a pair of runs is summed up."""

from __future__ import annotations

import pytest

from bench.sidebyside import REFERENCE, Sample, Variant, parse_args, parse_variant, summary


def test_a_variant_names_its_environment_and_a_value_may_be_empty() -> None:
    assert parse_variant("gc700=GC_YOUNG_THRESHOLD=700") == Variant(
        "gc700", {"GC_YOUNG_THRESHOLD": "700"}
    )
    assert parse_variant("mem=LOG_SPOOL_DIR=,log_shipping=true") == Variant(
        "mem", {"LOG_SPOOL_DIR": "", "LOG_SHIPPING": "true"}
    )


@pytest.mark.parametrize(
    "text",
    ["gc700", "on=LOG_SHIPPING=false", "bad name=A=1", "x=NOEQUALS", "x=A=1,", "x==1"],
)
def test_a_variant_that_does_not_parse_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"expected NAME=VAR=value|is not VAR=value"):
        parse_variant(text)


def test_two_variants_of_one_name_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(["a=X=1", "a=X=2"])
    assert "a name of its own" in capsys.readouterr().err


def _sample(pair: int, target: str, rps: float, main_ms: float, run: str = "v") -> Sample:
    return Sample(pair, run, target, rps, 0, gateway_ms=main_ms + 0.02, main_ms=main_ms)


def test_the_summary_takes_the_median_of_each_pairs_difference() -> None:
    samples = [
        _sample(1, REFERENCE, 2000, 0.250),
        _sample(1, "v", 1900, 0.262),
        _sample(2, REFERENCE, 1000, 0.400),  # the host slow in this pair: the pair still counts
        _sample(2, "v", 950, 0.410),
        _sample(3, REFERENCE, 2100, 0.240),
        _sample(3, "v", 2150, 0.235),
        _sample(3, "w", 10, 9.0, run="w"),  # another variant's sample does not count for "v"
    ]
    text = summary(samples, "v")
    assert "main thread +10.0 µs per request (median of 3; lower in 1 of 3; -5.0 to +12.0)" in text
    assert "whole gateway +10.0 µs" in text
    assert "req/s 0.950×" in text


def test_each_variant_is_compared_with_the_reference_of_its_own_run() -> None:
    # A pair runs the reference once beside each variant, at a different moment each time:
    # a variant measured against the reference of another variant's run would carry the
    # host's drift between the two runs (it once read -44 µs for a difference of -20).
    samples = [
        _sample(1, REFERENCE, 2000, 0.300, run="a"),
        _sample(1, "a", 2100, 0.280, run="a"),
        _sample(1, REFERENCE, 1500, 0.400, run="b"),
        _sample(1, "b", 1400, 0.410, run="b"),
    ]
    assert "main thread -20.0 µs per request" in summary(samples, "a")
    assert "req/s 1.050×" in summary(samples, "a")
    assert "main thread +10.0 µs per request" in summary(samples, "b")


def test_the_summary_says_when_no_pair_was_measured() -> None:
    assert summary([_sample(1, REFERENCE, 1, 0.1)], "v") == "v: no pair measured"
