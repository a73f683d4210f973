"""When to try a failed task again: exponential back-off with full jitter, or a fixed schedule.

Full jitter (AWS Architecture Blog, "Exponential Backoff and Jitter"): the n-th retry waits a
uniformly random time between 0 and min(cap, base * 2^(n-1)). Spreading retries over the whole
window keeps a thousand tasks that failed together (a mail server restart) from retrying
together and failing together again.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


class PermanentFailure(Exception):
    """Raised by a task when trying again cannot help (a 5xx SMTP reply, a payload that will
    never parse): the task goes to the dead-letter queue at once."""


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay_seconds: float = 2.0
    max_delay_seconds: float = 600.0
    # Explicit delays before attempts 2, 3, ... (webhooks follow a published schedule); when
    # set, they replace the exponential window, and each is jittered by ±10 %.
    schedule: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.schedule and len(self.schedule) < self.max_attempts - 1:
            raise ValueError("the schedule needs a delay before every retry")

    def delay_before(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before attempt number `attempt` (2 for the first retry)."""
        if attempt < 2:
            return 0.0
        draw = rng or random.SystemRandom()
        if self.schedule:
            return self.schedule[attempt - 2] * draw.uniform(0.9, 1.1)
        window = min(self.max_delay_seconds, self.base_delay_seconds * 2 ** (attempt - 2))
        return draw.uniform(0, window)
