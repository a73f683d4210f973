"""Back-off: full jitter inside a doubling window, and fixed schedules with a little jitter."""

from __future__ import annotations

import random

import pytest

from skilltree.platform.queue.retry import RetryPolicy


def test_first_attempt_has_no_delay() -> None:
    assert RetryPolicy().delay_before(1) == 0.0


@pytest.mark.parametrize("attempt", [2, 3, 4, 5, 8])
def test_full_jitter_stays_inside_the_doubling_window(attempt: int) -> None:
    policy = RetryPolicy(max_attempts=10, base_delay_seconds=1.0, max_delay_seconds=30.0)
    window = min(30.0, 2 ** (attempt - 2))
    draws = [policy.delay_before(attempt, random.Random(seed)) for seed in range(200)]

    assert all(0 <= delay <= window for delay in draws)
    # Full jitter spreads over the whole window, not around its end.
    assert min(draws) < window * 0.1
    assert max(draws) > window * 0.9


def test_the_window_is_capped() -> None:
    policy = RetryPolicy(max_attempts=30, base_delay_seconds=1.0, max_delay_seconds=5.0)

    assert max(policy.delay_before(25, random.Random(seed)) for seed in range(100)) <= 5.0


def test_a_fixed_schedule_is_followed_within_ten_percent() -> None:
    policy = RetryPolicy(max_attempts=3, schedule=(5.0, 300.0))

    assert 4.5 <= policy.delay_before(2, random.Random(1)) <= 5.5
    assert 270 <= policy.delay_before(3, random.Random(1)) <= 330


def test_a_schedule_shorter_than_the_retries_is_refused() -> None:
    with pytest.raises(ValueError, match="schedule"):
        RetryPolicy(max_attempts=4, schedule=(1.0,))
