"""The year of activity as an SVG calendar: a column per week, a row per weekday.

Drawn on the server from the same figures as GET /v1/me/stats. Cells carry a level class (the
stylesheet colours them, light and dark) and a <title> that names the day and the count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

CELL = 11
GAP = 3
STEP = CELL + GAP
TOP = 16  # room for the month labels
LEFT = 0
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class Cell:
    x: int
    y: int
    level: int
    label: str


@dataclass(frozen=True)
class Heatmap:
    width: int
    height: int
    cells: list[Cell]
    months: list[tuple[int, str]]  # x, label
    active_days: int
    total: int


def level(count: int, busiest: int) -> int:
    """0 for an idle day, then four steps up to the busiest day."""
    if count <= 0:
        return 0
    return min(4, 1 + (4 * (count - 1)) // max(busiest, 1))


def heatmap(days: Sequence[tuple[date, int]]) -> Heatmap:
    """Lay out consecutive days (oldest first) in weeks starting on Monday."""
    if not days:
        return Heatmap(0, 0, [], [], 0, 0)
    busiest = max(count for _, count in days)
    offset = days[0][0].weekday()
    cells: list[Cell] = []
    months: list[tuple[int, str]] = []
    for index, (day, count) in enumerate(days):
        week, weekday = divmod(index + offset, 7)
        x = LEFT + week * STEP
        starts_month = day.day == 1 or index == 0
        if starts_month and (not months or x - months[-1][0] >= 3 * STEP):
            months.append((x, MONTHS[day.month - 1]))
        noun = "change" if count == 1 else "changes"
        label = f"{count} {noun} on {day.isoformat()}"
        cells.append(Cell(x, TOP + weekday * STEP, level(count, busiest), label))
    weeks = (len(days) + offset + 6) // 7
    return Heatmap(
        width=LEFT + weeks * STEP,
        height=TOP + 7 * STEP,
        cells=cells,
        months=months,
        active_days=sum(1 for _, count in days if count),
        total=sum(count for _, count in days),
    )
