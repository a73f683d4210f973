"""The benchmark reads wrk's report correctly: a misread figure would make every ratio wrong."""

from __future__ import annotations

from bench.wrk import parse_wrk

REPORT = """Running 10s test @ http://127.0.0.1:8000/livez
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     4.10ms    1.20ms  31.02ms   89.10%
    Req/Sec     7.85k   512.33     8.91k    71.00%
  Latency Distribution
     50%    3.91ms
     75%    4.50ms
     90%    5.31ms
     99%  812.00us
  156312 requests in 10.01s, 21.32MB read
  Socket errors: connect 0, read 2, write 0, timeout 5
  Non-2xx or 3xx responses: 12
Requests/sec:  15615.86
Transfer/sec:      2.13MB
"""


def test_the_figures_are_read_with_their_units() -> None:
    result = parse_wrk("livez", REPORT)

    assert result.rps == 15615.86
    assert result.p50_ms == 3.91
    assert result.p99_ms == 0.812
    assert result.requests == 156312
    assert result.seconds == 10.01


def test_failed_requests_count_errors_and_bad_statuses() -> None:
    assert parse_wrk("livez", REPORT).bad == 12 + 2 + 5


def test_a_clean_run_has_no_failures() -> None:
    clean = REPORT.replace("  Socket errors: connect 0, read 2, write 0, timeout 5\n", "")
    clean = clean.replace("  Non-2xx or 3xx responses: 12\n", "")

    assert parse_wrk("livez", clean).bad == 0
