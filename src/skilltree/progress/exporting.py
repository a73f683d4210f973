"""A learner's progress on one roadmap as JSON (re-importable), CSV or a markdown checklist."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any

import orjson

from skilltree.progress.rollup import NodeState
from skilltree.progress.service import RoadmapProgress
from skilltree.roadmaps.document import RoadmapDoc, TopicDoc
from skilltree.roadmaps.exporting import spreadsheet_safe, to_markdown

JSON_FORMAT = "skilltree-progress/1"
CSV_COLUMNS = ("topic_id", "slug", "title", "depth", "status", "source", "confidence", "updated_at")


def to_json(progress: RoadmapProgress, exported_at: datetime) -> bytes:
    """The learner's own marks (not derived or shared ones): exactly what an import restores."""
    topics: list[dict[str, Any]] = [
        {
            "topic_id": state.node.topic.id,
            "slug": state.node.topic.slug,
            "title": state.node.topic.title,
            "status": state.mark.status,
            "confidence": state.mark.confidence,
            "updated_at": state.mark.updated_at.isoformat(),
        }
        for state in progress.topics()
        if state.mark is not None and state.source == "own"
    ]
    document = {
        "format": JSON_FORMAT,
        "roadmap": progress.roadmap.slug,
        "exported_at": exported_at.isoformat(),
        "topics": topics,
    }
    return orjson.dumps(document, option=orjson.OPT_INDENT_2)


def to_csv(progress: RoadmapProgress) -> str:
    """Every topic with its status by the roll-up rule, one row each, in tree order."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # RFC 4180 line ends
    writer.writerow(CSV_COLUMNS)
    for state, depth in _walk(progress.sections, 1):
        topic = state.node.topic
        writer.writerow(
            [
                topic.id,
                topic.slug,
                spreadsheet_safe(topic.title),
                depth,
                state.status,
                state.source,
                state.mark.confidence if state.mark else "",
                state.mark.updated_at.isoformat() if state.mark else "",
            ]
        )
    return buffer.getvalue()


def to_checklist(progress: RoadmapProgress) -> str:
    """The roadmap's markdown checklist with `[x]` on every topic that counts as done."""
    roadmap = progress.roadmap
    document = RoadmapDoc(
        slug=roadmap.slug,
        title=roadmap.title,
        description=roadmap.description,
        topics=[_doc(state) for state in progress.sections],
    )
    return to_markdown(document)


def _doc(state: NodeState) -> TopicDoc:
    topic = state.node.topic
    return TopicDoc(
        slug=topic.slug,
        title=topic.title,
        summary=topic.summary,
        status=state.status,
        children=[_doc(child) for child in state.children],
    )


def _walk(states: list[NodeState], depth: int) -> list[tuple[NodeState, int]]:
    flat: list[tuple[NodeState, int]] = []
    for state in states:
        flat.append((state, depth))
        flat.extend(_walk(state.children, depth + 1))
    return flat
