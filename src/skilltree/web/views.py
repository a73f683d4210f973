"""What the templates show, shaped from the services' read models (no rules here)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from skilltree.progress.rollup import NodeState, Tally
from skilltree.roadmaps.service import TopicNode, TopicRef

STATUS_LABELS = {
    "todo": "To do",
    "in_progress": "In progress",
    "done": "Done",
    "skipped": "Skipped",
}


@dataclass
class Bar:
    """A progress bar: done out of the leaves that count (skipped ones do not)."""

    percent: float
    done: int
    counted: int
    remaining_hours: float

    @classmethod
    def of(cls, tally: Tally) -> Bar:
        counted = tally.total - tally.counts["skipped"]
        return cls(tally.percent_done, tally.counts["done"], counted, tally.remaining_hours)

    def as_json(self) -> dict[str, Any]:
        return {"percent": self.percent, "done": self.done, "counted": self.counted}


@dataclass
class Row:
    slug: str
    title: str
    summary: str
    estimate_hours: float | None
    status: str | None = None  # None for an anonymous visitor
    own: bool = False  # the learner set this status (not derived, not shared by concept)
    bar: Bar | None = None
    children: list[Row] = field(default_factory=list)
    marked_at: datetime | None = None  # when the learner last set this topic's own status

    @property
    def left(self) -> bool:
        """Still to learn: what "only what is left" keeps."""
        return self.status not in ("done", "skipped")


def rows_from_progress(states: Sequence[NodeState]) -> list[Row]:
    return [
        Row(
            slug=state.node.topic.slug,
            title=state.node.topic.title,
            summary=state.node.topic.summary,
            estimate_hours=state.node.topic.estimate_hours,
            status=state.status,
            own=state.source == "own",
            bar=Bar.of(state.tally) if state.children else None,
            children=rows_from_progress(state.children),
            marked_at=state.mark.updated_at if state.mark and state.source == "own" else None,
        )
        for state in states
    ]


def statuses_and_bars(states: Sequence[NodeState]) -> tuple[list[str], list[Bar | None]]:
    """Each node's status and, for a parent, its bar, in tree order (a node, then its subtree):
    what a kept tree skeleton (web/tree_html.py) is filled with, as `rows_from_progress` would
    give them, without a row per topic."""
    statuses: list[str] = []
    bars: list[Bar | None] = []

    def visit(level: Sequence[NodeState]) -> None:
        for state in level:
            statuses.append(state.status)
            bars.append(Bar.of(state.tally) if state.children else None)
            if state.children:
                visit(state.children)

    visit(states)
    return statuses, bars


def rows_from_tree(nodes: Sequence[TopicNode[TopicRef]]) -> list[Row]:
    return [
        Row(
            slug=node.topic.slug,
            title=node.topic.title,
            summary=node.topic.summary,
            estimate_hours=node.topic.estimate_hours,
            children=rows_from_tree(node.children),
        )
        for node in nodes
    ]


def walk(rows: Iterable[Row]) -> Iterable[Row]:
    for row in rows:
        yield row
        yield from walk(row.children)


def states_json(rows: Sequence[Row]) -> dict[str, Any]:
    """Every row's status (and bar) for the page's script to apply after a change."""
    return {
        row.slug: {"status": row.status, "bar": row.bar.as_json() if row.bar else None}
        for row in walk(rows)
    }


def continue_with(rows: Sequence[Row]) -> Row | None:
    """Where to pick up: the topic in progress touched last, else the first leaf still to do
    after the one marked last (in the tree's order), else the first leaf still to do."""
    leaves = [row for row in walk(rows) if not row.children]
    marked = [(row.marked_at, index) for index, row in enumerate(leaves) if row.marked_at]
    started = [row for row in leaves if row.status == "in_progress" and row.marked_at]
    if started:
        return max(started, key=lambda row: row.marked_at or datetime.min)
    after = max(marked)[1] + 1 if marked else 0
    ordered = leaves[after:] + leaves[:after]
    return next((row for row in ordered if row.status == "todo"), None)
