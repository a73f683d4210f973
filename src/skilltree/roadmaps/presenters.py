"""How roadmaps and topics are shown over HTTP, shared by the reading and the editing routes."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson
from fastapi import Request
from fastapi.routing import iter_route_contexts

from skilltree.identity import Visibility
from skilltree.platform.cache import Computed
from skilltree.platform.http import conditional
from skilltree.platform.http.versioning import API_PREFIX
from skilltree.platform.state import AppResources
from skilltree.roadmaps import service
from skilltree.roadmaps.builtin.locations import locate
from skilltree.roadmaps.builtin.status import implementation_of
from skilltree.roadmaps.schemas import (
    ImplementationOut,
    ReferenceOut,
    ResourceOut,
    RoadmapOut,
    TopicOut,
    TopicRefOut,
)


def cache_control(roadmap: service.RoadmapRef, resources: AppResources) -> str:
    """Public roadmaps may be cached by anyone for a while; the others by no one."""
    if roadmap.visibility == Visibility.PUBLIC:
        return conditional.public(resources.settings.http.public_max_age_seconds)
    return conditional.PRIVATE


def public_representation(
    body: TopicOut | bytes, roadmap: service.RoadmapRef, resources: AppResources
) -> Computed:
    """The response, cached for everyone when the roadmap is public and for no one otherwise:
    an anonymous reader must never be served what a member of a private roadmap saw."""
    content = body if isinstance(body, bytes) else conditional.json_representation(body)
    representation = conditional.Representation(
        content, conditional.entity_tag(content), cache_control(roadmap, resources)
    )
    return Computed(representation.to_bytes(), shareable=roadmap.visibility == Visibility.PUBLIC)


def tree_json(tree: service.TreeRows) -> bytes:
    """The bytes of `RoadmapTreeOut`, built from the topics' columns by orjson rather than
    through a Pydantic model per topic: 10,000 topics in milliseconds instead of seconds.

    The schema stays the contract (it documents the route in OpenAPI); the bytes must be the
    ones the schema would give, key order included (`tests/roadmaps/test_tree_bytes.py`,
    decision 0043). So the keys below are written in the schema's field order.
    """
    listing = service.RoadmapListing(tree.roadmap, len(tree.topics))
    roadmap = roadmap_out(listing).model_dump_json().encode()
    return b'{"roadmap":' + roadmap + b',"topics":' + orjson.dumps(_nested(tree.topics)) + b"}"


def _nested(topics: Sequence[service.TreeTopic]) -> list[dict[str, Any]]:
    """Topics grouped by parent, siblings by position, as nested dicts (TopicNodeOut's
    fields), in two passes: every node first, then each appended to its parent's children (or
    to the sections), which keeps sibling order whichever group comes first."""
    nodes: dict[int, dict[str, Any]] = {}
    for topic in topics:
        hours = topic.estimate_hours
        nodes[topic.id] = {
            "slug": topic.slug,
            "title": topic.title,
            "summary": topic.summary,
            "level": topic.level,
            "tags": topic.tags,
            "implemented": topic.implemented,
            "concept": topic.concept,
            # The schema's float field writes 2 as 2.0; a backend may hand back an int.
            "estimate_hours": None if hours is None else float(hours),
            "children": [],
        }
    sections = []
    for topic in topics:
        node = nodes[topic.id]
        if topic.parent_id is None:
            sections.append(node)
        else:
            nodes[topic.parent_id]["children"].append(node)
    return sections


def topic_out(
    view: service.TopicView, endpoints: Mapping[str, Callable[..., object]] | None = None
) -> TopicOut:
    topic = view.topic
    return TopicOut(
        id=topic.id,
        roadmap=view.roadmap.slug,
        slug=topic.slug,
        title=topic.title,
        summary=topic.summary,
        why=topic.why,
        level=topic.level,  # validated on import
        tags=topic.tags,
        seeds=topic.seeds,
        resources=[ResourceOut.model_validate(r) for r in topic.resources],
        implemented_in=[_reference_out(r, endpoints) for r in topic.implemented_in],
        implementation=_implementation_out(view),
        concept=topic.concept,
        estimate_hours=topic.estimate_hours,
        path=[TopicRefOut(slug=t.slug, title=t.title) for t in view.ancestors],
        children=[TopicRefOut(slug=t.slug, title=t.title) for t in view.children],
        links={
            "self": f"{API_PREFIX}/roadmaps/{view.roadmap.slug}/topics/{topic.slug}",
            "roadmap": f"{API_PREFIX}/roadmaps/{view.roadmap.slug}",
        },
    )


def _reference_out(
    reference: dict[str, Any], endpoints: Mapping[str, Callable[..., object]] | None
) -> ReferenceOut:
    out = ReferenceOut.model_validate(reference)
    location = locate(out.kind, out.target, endpoints)
    if location is not None:
        out.path, out.line_start, out.line_end = (
            location.path,
            location.line_start,
            location.line_end,
        )
    return out


def _implementation_out(view: service.TopicView) -> ImplementationOut | None:
    if view.roadmap.source != "builtin" or view.children:
        return None
    found = implementation_of(view.topic.slug, bool(view.topic.implemented_in))
    return None if found is None else ImplementationOut(status=found.status, reason=found.reason)


def route_handlers(request: Request) -> dict[str, Callable[..., object]]:
    """'METHOD /path' -> the function that handles it, to locate endpoint references."""
    handlers: dict[str, Callable[..., object]] = {}
    # Included routers are resolved lazily; their contexts carry the paths the app serves.
    for route in iter_route_contexts(request.app.routes):
        endpoint = route.endpoint
        for method in route.methods or ():
            if endpoint is not None and route.path is not None:
                handlers[f"{method} {route.path}"] = endpoint
    return handlers


def roadmap_out(listing: service.RoadmapListing) -> RoadmapOut:
    roadmap = listing.roadmap
    base = f"{API_PREFIX}/roadmaps/{roadmap.slug}"
    return RoadmapOut(
        slug=roadmap.slug,
        title=roadmap.title,
        description=roadmap.description,
        source=roadmap.source,
        version=roadmap.version,
        visibility=roadmap.visibility,
        topic_count=listing.topic_count,
        updated_at=roadmap.updated_at,
        links={
            "self": base,
            "tree": f"{base}/tree",
            "export": f"{base}/export",
            "revisions": f"{base}/revisions",
        },
    )
