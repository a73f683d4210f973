"""Roadmap trees kept in the worker between page views, keyed by the roadmap's version.

The roadmap page rolls a learner's marks up over the roadmap's whole outline; loading it is a
statement returning every topic and an ORM object per row (hundreds for the built-in roadmap),
most of the page's CPU after the tree's markup. The outline is the same for every learner and
changes only when the roadmap does, and every change bumps the roadmap's `version` and
`updated_at` (roadmaps/editing.py `_touch`, roadmaps/storing.py). The page reads the roadmap's
row on every request anyway (who may see it), so a kept outline is used only when its key still
matches that row: an edit is seen on the very next view, on every worker, with no invalidation
message to miss (docs/decisions/0066-page-outline-memo.md). The outline's markup is kept with
it, as a skeleton each view fills with its learner's statuses (decision 0069). A topic page
keeps the whole tree (each topic's text and lists) the same way: it shows one topic and rolls
progress up its subtree.

Per application: two apps in one process (tests) may have different databases whose roadmaps
share ids and versions. Bounded by the topics held, least recently used out first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from weakref import WeakKeyDictionary

from cachetools import LRUCache

from skilltree.roadmaps import service as roadmaps
from skilltree.web.tree_html import Outline, TreeSkeleton, compile_tree
from skilltree.web.views import STATUS_LABELS

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncSession

# Topics held per application: the built-in roadmap is about 450; outlines are small objects.
MAX_TOPICS = 20_000

Kind = Literal["outline", "details"]
Key = tuple[Kind, int, str, int, "datetime"]
Kept = LRUCache[Key, "Trees"]

_by_app: WeakKeyDictionary[object, Kept] = WeakKeyDictionary()


@dataclass(frozen=True, slots=True)
class Trees:
    """A kept tree and its topics in tree order (a topic page looks one up by slug)."""

    tree: roadmaps.RoadmapTree[Any]
    topics: tuple[Any, ...]
    # The tree's markup (web/tree_html.py), compiled with the first view that needs it: with
    # status forms (a learner's view) and without (a visitor's).
    skeletons: dict[bool, TreeSkeleton] = field(default_factory=dict)


def _size(kept: Trees) -> int:
    return kept.tree.topic_count + 1


def kept_of(app: object) -> Kept:
    kept = _by_app.get(app)
    if kept is None:
        kept = _by_app[app] = LRUCache(maxsize=MAX_TOPICS, getsizeof=_size)
    return kept


async def outline_markup(
    app: object, session: AsyncSession, roadmap: roadmaps.RoadmapRef, *, forms: bool
) -> tuple[roadmaps.RoadmapTree[roadmaps.TopicRef], TreeSkeleton]:
    """The roadmap's outline (what progress rolls up), kept for this version of the roadmap,
    and the skeleton of its markup (web/tree_html.py; a status form per topic if `forms`),
    compiled with the first view of this version that needs it."""
    kept = await _kept(app, session, roadmap, "outline")
    skeleton = kept.skeletons.get(forms)
    if skeleton is None:
        sections = kept.tree.sections
        skeleton = compile_tree(roadmap.slug, sections, STATUS_LABELS, read_node, forms=forms)
        kept.skeletons[forms] = skeleton
    return roadmaps.RoadmapTree(roadmap, kept.tree.sections, kept.tree.topic_count), skeleton


def read_node(node: roadmaps.TopicNode[roadmaps.TopicRef]) -> Outline:
    topic = node.topic
    return Outline(topic.slug, topic.title, topic.summary, topic.estimate_hours, node.children)


async def details(
    app: object, session: AsyncSession, roadmap: roadmaps.RoadmapRef
) -> tuple[roadmaps.RoadmapTree[roadmaps.TopicDetail], tuple[roadmaps.TopicDetail, ...]]:
    """The roadmap's whole tree (what a topic page shows) and its topics in tree order."""
    kept = await _kept(app, session, roadmap, "details")
    return roadmaps.RoadmapTree(roadmap, kept.tree.sections, kept.tree.topic_count), kept.topics


async def _kept(
    app: object, session: AsyncSession, roadmap: roadmaps.RoadmapRef, kind: Kind
) -> Trees:
    kept = kept_of(app)
    key: Key = (kind, roadmap.id, roadmap.slug, roadmap.version, roadmap.updated_at)
    found = kept.get(key)
    if found is None:
        found = await _load(session, roadmap, kind)
        if _size(found) <= kept.maxsize:
            kept[key] = found
    # The tree is rebuilt on the current row, not the one kept: fields an edit need not
    # version (visibility) stay live.
    return found


async def _load(session: AsyncSession, roadmap: roadmaps.RoadmapRef, kind: Kind) -> Trees:
    if kind == "outline":
        tree: roadmaps.RoadmapTree[Any] = await roadmaps.outline_of(session, roadmap)
    else:
        sections = (await roadmaps.trees_of(session, [roadmap]))[roadmap.id]
        tree = roadmaps.RoadmapTree(roadmap, sections, roadmaps.count_nodes(sections))
    return Trees(tree, tuple(node.topic for node in roadmaps.walk(tree.sections)))
