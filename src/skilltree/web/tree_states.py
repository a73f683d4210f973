"""A learner's states on a roadmap's tree, as the roadmap page fills its kept skeleton with,
kept in the cache under the learner's progress namespaces.

Each view of the roadmap page rolled the learner's marks up over the whole outline: two
statements (the profile, the marks), a `NodeState` and a `Counter` per topic (hundreds for the
built-in roadmap), then each node's status and bar read back out in tree order. That was about
half of the page's CPU, and between two views of one learner it rarely changes. So the result,
each node's status and each parent's bar in tree order and the whole roadmap's bar, is kept as
a small JSON value (a few kB; the page's markup stays in the skeleton, per roadmap version) by
`platform/cache.py`, as the API's progress summary is (progress/router.py `_cached_progress`):

- under the learner's own key (their user id), after the page has checked that they may see
  the roadmap (`require_roadmap`, on every view);
- computed from the namespaces `progress.cache_namespaces` names: every status change (any
  roadmap, concept sharing), the profile (concept sharing on or off), the roadmap, and the
  concepts mark it stale once its unit of work commits, so a change shows on the very next
  view;
- named after the roadmap's version as well (id, version, `updated_at`: the kept outline's
  key, web/outlines.py), so its nodes are numbered as the skeleton it fills is, whatever the
  order in which the namespaces' tokens and the roadmap's row are read.

Decision 0077.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from skilltree.platform.cache import Computed, Key
from skilltree.progress import service as progress
from skilltree.roadmaps import service as roadmaps
from skilltree.web.views import Bar, statuses_and_bars

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from skilltree.platform.state import Resources


@dataclass(frozen=True, slots=True)
class TreeStates:
    """Each node's status and, for a parent, its bar, in tree order; the whole roadmap's bar."""

    statuses: Sequence[str | None]
    bars: Sequence[Bar | None]
    bar: Bar

    def to_bytes(self) -> bytes:
        parents = [[node, *_bar_fields(bar)] for node, bar in enumerate(self.bars) if bar]
        value = {"statuses": self.statuses, "bars": parents, "bar": _bar_fields(self.bar)}
        return json.dumps(value, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, value: bytes) -> TreeStates:
        data = json.loads(value)
        statuses: list[str | None] = data["statuses"]
        bars: list[Bar | None] = [None] * len(statuses)
        for node, *fields in data["bars"]:
            bars[node] = Bar(*fields)
        return cls(statuses, bars, Bar(*data["bar"]))


def _bar_fields(bar: Bar) -> list[Any]:
    # Floats go through JSON exactly (repr), so a bar reads back as it was written.
    return [bar.percent, bar.done, bar.counted, bar.remaining_hours]


def cache_key(user_id: int, roadmap: roadmaps.RoadmapRef, topic: str | None = None) -> Key:
    """The key of the learner's states on the roadmap's tree, or with `topic`, of what that
    topic's page shows of them (`TopicProgress`)."""
    version = f"{roadmap.id}:{roadmap.version}:{roadmap.updated_at.isoformat()}"
    view = "page-tree" if topic is None else f"page-topic:{topic}"
    return Key(
        f"learner:{user_id}:{roadmap.slug}:{view}:{version}",
        progress.cache_namespaces(user_id, roadmap.slug),
    )


async def tree_states(
    session: AsyncSession,
    resources: Resources,
    user_id: int,
    outline: roadmaps.RoadmapTree[roadmaps.TopicRef],
) -> TreeStates:
    """The learner's states on `outline` (which the caller may show them), from the cache or
    rolled up now."""

    async def compute() -> Computed:
        state = await progress.progress_on(session, user_id, outline)
        statuses, bars = statuses_and_bars(state.sections)
        return Computed(TreeStates(statuses, bars, Bar.of(state.tally)).to_bytes())

    key = cache_key(user_id, outline.roadmap)
    ttl = resources.settings.cache.progress_ttl_seconds
    return TreeStates.from_bytes(await resources.cache.fetch(key, compute, ttl))


@dataclass(frozen=True, slots=True)
class TopicProgress:
    """What a topic page shows of its learner: their status on the topic and their changes of
    it (newest first, among the last `HISTORY_SHOWN` on the roadmap, as the page always did)."""

    status: str
    history: Sequence[progress.Event]

    def to_bytes(self) -> bytes:
        events = [
            [
                e.id,
                e.topic_id,
                e.from_status,
                e.to_status,
                e.confidence,
                e.occurred_at.isoformat(),
                e.request_id,
                e.undoes_event_id,
            ]
            for e in self.history
        ]
        return json.dumps({"status": self.status, "history": events}).encode()

    @classmethod
    def from_bytes(cls, value: bytes) -> TopicProgress:
        data = json.loads(value)
        history = [
            progress.Event(
                id_,
                topic,
                before,
                after,
                confidence,
                datetime.fromisoformat(at),
                request_id,
                undoes,
            )
            for id_, topic, before, after, confidence, at, request_id, undoes in data["history"]
        ]
        return cls(data["status"], history)


# The changes a topic page looks for its topic's among (the learner's newest on the roadmap).
HISTORY_SHOWN = 100


async def topic_progress(
    session: AsyncSession,
    resources: Resources,
    learner: progress.Learner,
    tree: roadmaps.RoadmapTree[Any],
    node: roadmaps.TopicNode[Any],
) -> TopicProgress:
    """The learner's status on the topic of `node` and its history, from the cache or read now.
    The status is rolled up over the topic's subtree alone, which it depends on alone (the
    same as in the whole tree), without reading every topic's mark."""
    topic = node.topic

    async def compute() -> Computed:
        subtree = roadmaps.RoadmapTree(tree.roadmap, (node,), roadmaps.count_nodes((node,)))
        (state,) = (await progress.progress_on(session, learner.user_id, subtree)).sections
        history = await progress.history_in(session, learner, tree, None, HISTORY_SHOWN)
        mine = [event for event in history.page.items if event.topic_id == topic.id]
        return Computed(TopicProgress(state.status, mine).to_bytes())

    key = cache_key(learner.user_id, tree.roadmap, topic.slug)
    ttl = resources.settings.cache.progress_ttl_seconds
    return TopicProgress.from_bytes(await resources.cache.fetch(key, compute, ttl))
