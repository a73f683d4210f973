"""How roadmaps and topics are shown over HTTP, shared by the reading and the editing routes."""

from __future__ import annotations

from skilltree.identity import Visibility
from skilltree.platform.cache import Computed
from skilltree.platform.http import conditional
from skilltree.platform.http.versioning import API_PREFIX
from skilltree.platform.state import AppResources
from skilltree.roadmaps import service
from skilltree.roadmaps.schemas import (
    ReferenceOut,
    ResourceOut,
    RoadmapOut,
    RoadmapTreeOut,
    TopicOut,
    TopicRefOut,
)


def cache_control(roadmap: service.RoadmapRef, resources: AppResources) -> str:
    """Public roadmaps may be cached by anyone for a while; the others by no one."""
    if roadmap.visibility == Visibility.PUBLIC:
        return conditional.public(resources.settings.http.public_max_age_seconds)
    return conditional.PRIVATE


def public_representation(
    body: RoadmapTreeOut | TopicOut, roadmap: service.RoadmapRef, resources: AppResources
) -> Computed:
    """The response, cached for everyone when the roadmap is public and for no one otherwise:
    an anonymous reader must never be served what a member of a private roadmap saw."""
    representation = conditional.Representation.of(
        body, cache_control=cache_control(roadmap, resources)
    )
    return Computed(representation.to_bytes(), shareable=roadmap.visibility == Visibility.PUBLIC)


def topic_out(view: service.TopicView) -> TopicOut:
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
        implemented_in=[ReferenceOut.model_validate(r) for r in topic.implemented_in],
        concept=topic.concept,
        estimate_hours=topic.estimate_hours,
        path=[TopicRefOut(slug=t.slug, title=t.title) for t in view.ancestors],
        children=[TopicRefOut(slug=t.slug, title=t.title) for t in view.children],
        links={
            "self": f"{API_PREFIX}/roadmaps/{view.roadmap.slug}/topics/{topic.slug}",
            "roadmap": f"{API_PREFIX}/roadmaps/{view.roadmap.slug}",
        },
    )


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
