"""What the pages compute from read models: where to continue, the heatmap's layout."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from skilltree.web.heatmap import heatmap, level
from skilltree.web.views import Row, continue_with


def leaf(slug: str, status: str, minutes: int | None = None) -> Row:
    marked = datetime(2026, 12, 1, tzinfo=UTC) + timedelta(minutes=minutes) if minutes else None
    return Row(slug, slug.title(), "", None, status=status, own=bool(marked), marked_at=marked)


def test_continue_with_the_topic_after_the_one_marked_last() -> None:
    rows = [
        Row("a", "A", "", None, children=[leaf("a1", "done", 5), leaf("a2", "todo")]),
        Row("b", "B", "", None, children=[leaf("b1", "done", 9), leaf("b2", "todo")]),
    ]
    chosen = continue_with(rows)
    assert chosen is not None
    assert chosen.slug == "b2"


def test_continue_with_the_topic_in_progress_touched_last() -> None:
    rows = [leaf("a", "in_progress", 1), leaf("b", "done", 3), leaf("c", "in_progress", 2)]
    chosen = continue_with(rows)
    assert chosen is not None
    assert chosen.slug == "c"


def test_nothing_to_continue_when_everything_is_finished() -> None:
    assert continue_with([leaf("a", "done", 1), leaf("b", "skipped", 2)]) is None


def test_the_heatmap_puts_each_day_under_its_weekday_and_scales_levels_to_the_busiest() -> None:
    start = date(2026, 11, 30)  # a Monday
    days = [(start + timedelta(days=i), count) for i, count in enumerate([0, 1, 8, 0, 0, 0, 0, 2])]
    drawn = heatmap(days)
    assert [cell.level for cell in drawn.cells[:3]] == [0, 1, 4]
    assert drawn.cells[7].x > drawn.cells[6].x  # the next Monday starts a new column
    assert drawn.cells[7].y == drawn.cells[0].y
    assert drawn.active_days == 3
    assert drawn.total == 11
    assert drawn.cells[1].label == "1 change on 2026-12-01"
    assert level(0, 8) == 0
