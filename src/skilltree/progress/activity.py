"""Streaks and the activity heatmap: days counted in the learner's own time zone. Pure.

A day is active when the learner changed any topic's status that day, local time: a change at
23:30 in Berlin belongs to that Berlin day even though it is the next day in UTC.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

HEATMAP_DAYS = 365


@dataclass(frozen=True)
class Streaks:
    current: int
    longest: int


def activity_by_day(moments: Iterable[datetime], zone: ZoneInfo) -> Counter[date]:
    return Counter(moment.astimezone(zone).date() for moment in moments)


def streaks(active_days: Iterable[date], today: date) -> Streaks:
    """Consecutive active days: the run that reaches today (or yesterday, since today is not
    over yet), and the longest run ever."""
    days = sorted(set(active_days))
    longest = run = 0
    previous: date | None = None
    for day in days:
        run = run + 1 if previous is not None and day - previous == timedelta(days=1) else 1
        longest = max(longest, run)
        previous = day
    current = 0
    if previous is not None and today - previous <= timedelta(days=1):
        current = run
    return Streaks(current=current, longest=longest)


def heatmap(counts: Counter[date], today: date, days: int = HEATMAP_DAYS) -> list[tuple[date, int]]:
    """One entry per day for the last `days` days, oldest first, ending today."""
    first = today - timedelta(days=days - 1)
    return [(first + timedelta(days=n), counts[first + timedelta(days=n)]) for n in range(days)]
