"""The roll-up rule: what every topic of a roadmap counts as, at any depth. Pure functions.

A topic's status is, in order:
1. the learner's own mark on it, or — with concept sharing on — the newest mark on any topic
   of any roadmap that teaches the same concept (`Sourced.source` says which);
2. for a parent without a mark, derived from its children: done when every child is done or
   skipped, in progress when any child was started, todo otherwise;
3. todo for a leaf without a mark.

Summaries count leaves (the units of work) with the same rule: a parent marked done or skipped
counts every leaf beneath it as such. Estimates work the same way: a parent's hours are its
children's, or its own when none of its children has one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

Status = Literal["todo", "in_progress", "done", "skipped"]
STATUSES: tuple[Status, ...] = ("todo", "in_progress", "done", "skipped")
FINISHED = frozenset({"done", "skipped"})
Source = Literal["own", "concept", "derived", "default"]


class TopicLike(Protocol):
    """What the rule reads of a topic (roadmaps.models.Topic, or a plain object in tests)."""

    @property
    def id(self) -> int: ...
    @property
    def slug(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def summary(self) -> str: ...
    @property
    def concept(self) -> str | None: ...
    @property
    def estimate_hours(self) -> float | None: ...


class NodeLike(Protocol):
    @property
    def topic(self) -> TopicLike: ...
    @property
    def children(self) -> Sequence[NodeLike]: ...


@dataclass(frozen=True)
class Mark:
    """A status a learner set on a topic (a row of the projection)."""

    topic_id: int
    status: str
    confidence: int | None
    updated_at: datetime


@dataclass(frozen=True)
class Sourced:
    mark: Mark
    source: Literal["own", "concept"]


@dataclass
class Tally:
    """Leaf counts by status, and hours: what a summary of a subtree reports."""

    counts: Counter[str] = field(default_factory=Counter)
    total_hours: float = 0.0
    remaining_hours: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def percent_done(self) -> float:
        """Done leaves out of those not skipped; a subtree skipped entirely is 100 % done."""
        counted = self.total - self.counts["skipped"]
        if self.total == 0:
            return 0.0
        if counted == 0:
            return 100.0
        return round(100 * self.counts["done"] / counted, 1)

    def add(self, other: Tally) -> None:
        self.counts.update(other.counts)
        self.total_hours += other.total_hours
        self.remaining_hours += other.remaining_hours


@dataclass
class NodeState:
    node: NodeLike
    status: str
    source: Source
    mark: Mark | None
    tally: Tally
    children: list[NodeState]


def newest_by_concept(marks: Iterable[Mark], concept_of: Mapping[int, str]) -> dict[str, Mark]:
    """The most recent mark per concept, over every topic that teaches it."""
    newest: dict[str, Mark] = {}
    for mark in marks:
        concept = concept_of.get(mark.topic_id)
        if concept is None:
            continue
        current = newest.get(concept)
        if current is None or (mark.updated_at, mark.topic_id) > (
            current.updated_at,
            current.topic_id,
        ):
            newest[concept] = mark
    return newest


def choose_marks(
    topics: Iterable[TopicLike],
    own: Mapping[int, Mark],
    shared: Mapping[str, Mark] | None,
) -> dict[int, Sourced]:
    """Each topic's deciding mark: its own, unless a newer one on the same concept exists."""
    chosen: dict[int, Sourced] = {}
    for topic in topics:
        mark = own.get(topic.id)
        concept_mark = shared.get(topic.concept) if shared and topic.concept else None
        if concept_mark is not None and (mark is None or concept_mark.updated_at > mark.updated_at):
            chosen[topic.id] = Sourced(
                concept_mark, "own" if concept_mark.topic_id == topic.id else "concept"
            )
        elif mark is not None:
            chosen[topic.id] = Sourced(mark, "own")
    return chosen


def roll_up(nodes: Sequence[NodeLike], marks: Mapping[int, Sourced]) -> list[NodeState]:
    return [_state(node, marks) for node in nodes]


def total(states: Iterable[NodeState]) -> Tally:
    tally = Tally()
    for state in states:
        tally.add(state.tally)
    return tally


def flatten(states: Iterable[NodeState]) -> list[NodeState]:
    flat: list[NodeState] = []
    for state in states:
        flat.append(state)
        flat.extend(flatten(state.children))
    return flat


def _state(node: NodeLike, marks: Mapping[int, Sourced]) -> NodeState:
    children = [_state(child, marks) for child in node.children]
    sourced = marks.get(node.topic.id)
    source: Source
    if sourced is not None:
        status, source, mark = sourced.mark.status, sourced.source, sourced.mark
    elif children:
        status, source, mark = _derived([child.status for child in children]), "derived", None
    else:
        status, source, mark = "todo", "default", None
    tally = _tally(node, status if mark is not None else None, children)
    return NodeState(node, status, source, mark, tally, children)


def _derived(child_statuses: Sequence[str]) -> str:
    if all(status in FINISHED for status in child_statuses):
        return "done"
    if any(status != "todo" for status in child_statuses):
        return "in_progress"
    return "todo"


def _tally(node: NodeLike, marked: str | None, children: Sequence[NodeState]) -> Tally:
    """`marked` is the status set on this topic itself, None when it has none."""
    own_hours = node.topic.estimate_hours or 0.0
    if not children:
        status = marked or "todo"
        return Tally(Counter({status: 1}), own_hours, 0.0 if status in FINISHED else own_hours)
    tally = total(children)
    if tally.total_hours == 0.0:
        # Only the parent was estimated: its hours stand for the whole subtree.
        tally.total_hours = own_hours
        tally.remaining_hours = own_hours * (1 - tally.percent_done / 100)
    if marked in FINISHED and tally.counts[marked] != tally.total:
        # Marked finished by hand: every leaf beneath counts as finished with it.
        tally = Tally(Counter({marked: tally.total}), tally.total_hours, 0.0)
    return tally
