"""The search benchmark's own arithmetic and word list."""

from __future__ import annotations

from bench.search import percentile, vocabulary


def test_percentiles_are_read_from_the_sorted_durations() -> None:
    durations = [float(n) for n in range(100, 0, -1)]

    assert percentile(durations, 0.5) == 51.0  # index round(49.5) = 50 of 1..100
    assert percentile(durations, 0.99) == 99.0
    assert percentile([3.0], 0.99) == 3.0


def test_queries_draw_from_the_builtin_roadmaps_words_most_frequent_first() -> None:
    words = vocabulary()

    assert len(words) > 1_000
    assert len(set(words)) == len(words)
    assert words.index("data") < words.index("idempotency")
