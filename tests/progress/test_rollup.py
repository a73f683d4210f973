"""The roll-up rule on arbitrary trees (pure functions, no database)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from skilltree.progress.rollup import (
    FINISHED,
    STATUSES,
    Mark,
    Sourced,
    flatten,
    roll_up,
    total,
)

_ids = itertools.count(1)
WHEN = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class FakeTopic:
    id: int
    slug: str = "t"
    title: str = "T"
    summary: str = ""
    concept: str | None = None
    estimate_hours: float | None = None


@dataclass
class FakeNode:
    topic: FakeTopic
    children: list[FakeNode] = field(default_factory=list)


def trees(depth: int = 3) -> st.SearchStrategy[list[FakeNode]]:
    leaf = st.builds(lambda: FakeNode(FakeTopic(next(_ids))))
    node = st.recursive(
        leaf,
        lambda kids: st.lists(kids, min_size=1, max_size=3).map(
            lambda children: FakeNode(FakeTopic(next(_ids)), children)
        ),
        max_leaves=12,
    )
    return st.lists(node, min_size=1, max_size=3)


def leaves(node: FakeNode) -> list[FakeNode]:
    return [node] if not node.children else [x for c in node.children for x in leaves(c)]


@given(data=st.data(), sections=trees())
def test_the_rule_holds_at_every_depth(data: st.DataObject, sections: list[FakeNode]) -> None:
    everything = [n for s in sections for n in [s, *_descendants(s)]]
    marked = data.draw(st.lists(st.sampled_from(everything), unique_by=lambda n: n.topic.id))
    marks = {
        n.topic.id: Sourced(
            Mark(n.topic.id, data.draw(st.sampled_from(STATUSES)), None, WHEN), "own"
        )
        for n in marked
    }

    states = roll_up(sections, marks)

    for state in flatten(states):
        node = state.node
        assert state.tally.total == len(leaves(node))
        assert 0 <= state.tally.percent_done <= 100
        if node.topic.id in marks:
            assert state.status == marks[node.topic.id].mark.status
        elif state.children:
            finished = all(child.status in FINISHED for child in state.children)
            assert (state.status == "done") == finished
        else:
            assert state.status == "todo"


def _descendants(node: FakeNode) -> list[FakeNode]:
    return [x for child in node.children for x in [child, *_descendants(child)]]


def test_a_parent_estimate_stands_for_unestimated_children() -> None:
    parent = FakeNode(
        FakeTopic(1, estimate_hours=10), [FakeNode(FakeTopic(2)), FakeNode(FakeTopic(3))]
    )
    marks = {2: Sourced(Mark(2, "done", None, WHEN), "own")}

    (state,) = roll_up([parent], marks)

    assert (state.tally.total_hours, state.tally.remaining_hours) == (10, 5)


def test_a_subtree_skipped_entirely_counts_as_complete() -> None:
    parent = FakeNode(FakeTopic(1), [FakeNode(FakeTopic(2))])
    marks = {2: Sourced(Mark(2, "skipped", None, WHEN), "own")}

    (state,) = roll_up([parent], marks)

    assert (state.status, state.tally.percent_done) == ("done", 100.0)
    assert total([]).percent_done == 0.0
