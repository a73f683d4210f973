"""The scale benchmark reads its size lists and compares sizes the way its tables say."""

from __future__ import annotations

from bench.scale import Measurement, growth, median_run, normalised_growth, parse_sizes
from bench.wrk import Result


def test_sizes_are_read_with_or_without_underscores() -> None:
    assert parse_sizes("100,1_000,10000") == (100, 1_000, 10_000)


def test_growth_is_the_p50_of_the_larger_size_over_the_smallest() -> None:
    baseline = Result("fastapi", rps=9000, p50_ms=1.0, p99_ms=2.0, bad=0)
    small = Measurement("due", 1_000, Result("due", 200, 40.0, 80.0, 0), baseline)
    large = Measurement("due", 1_000_000, Result("due", 160, 50.0, 90.0, 0), baseline)

    assert growth(small, large) == 1.25


def test_a_slower_machine_is_not_counted_as_growth() -> None:
    small = Measurement(
        "due",
        1_000,
        Result("due", 200, 40.0, 80.0, 0),
        Result("fastapi", rps=10_000, p50_ms=1.0, p99_ms=2.0, bad=0),
    )
    large = Measurement(
        "due",
        1_000_000,
        Result("due", 160, 50.0, 90.0, 0),
        Result("fastapi", rps=8_000, p50_ms=1.2, p99_ms=2.4, bad=0),
    )

    assert normalised_growth(small, large) == 1.0


def test_the_median_run_is_the_one_with_the_middle_p50() -> None:
    runs = [Result(f"run {n}", 100, p50, 2 * p50, 0) for n, p50 in enumerate([30.0, 10.0, 20.0])]

    assert median_run(runs).name == "run 2"
