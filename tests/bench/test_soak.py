"""The soak benchmark's arithmetic on memory samples, and the wrk script it drives with."""

from __future__ import annotations

import pytest

from bench.soak import Call, Sample, after_warm_up, mix_script, slope_mb_per_minute


def test_a_steady_rise_has_its_slope_in_mib_per_minute() -> None:
    rising = [Sample(seconds, 100 + seconds / 30) for seconds in range(0, 600, 5)]

    assert slope_mb_per_minute(rising) == pytest.approx(2.0)


def test_flat_memory_has_no_slope() -> None:
    flat = [Sample(seconds, 120.0) for seconds in range(0, 600, 5)]

    assert slope_mb_per_minute(flat) == 0.0
    assert slope_mb_per_minute(flat[:1]) == 0.0


def test_the_first_minute_is_left_out_as_warm_up() -> None:
    samples = [Sample(seconds, 100.0) for seconds in (0, 30, 59, 60, 90)]

    assert [s.seconds for s in after_warm_up(samples)] == [60, 90]


def test_the_script_sends_every_call_in_turn_with_its_headers_and_body() -> None:
    calls = [
        Call("GET", "/livez", {}),
        Call("PUT", "/v1/x", {"Content-Type": "application/json"}, '{"status": "done"}'),
    ]

    script = mix_script(calls, pause_ms=20)

    assert '{"GET", "/livez", {}, nil}' in script
    assert '{"PUT", "/v1/x", {["Content-Type"] = "application/json"}, ' in script
    assert r'"{\"status\": \"done\"}"' in script
    assert "return 20" in script
