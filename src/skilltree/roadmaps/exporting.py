"""Render a roadmap document as a markdown checklist that the markdown importer reads back.

Sections become `##` headings and everything below them nested task-list items, which keeps
sibling order exactly (sub-headings would force leaves before groups).
"""

from __future__ import annotations

from skilltree.roadmaps.document import RoadmapDoc, TopicDoc

INDENT = "  "


def to_markdown(document: RoadmapDoc) -> str:
    lines = [f"# {document.title}", ""]
    if document.description:
        lines += [_one_line(document.description), ""]
    for section in document.topics:
        lines += [f"## {section.title}", ""]
        for child in section.children:
            lines += _item(child, depth=0)
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _item(topic: TopicDoc, depth: int) -> list[str]:
    box = "[x]" if topic.status == "done" else "[ ]"
    text = topic.title
    if topic.summary and not topic.children:
        text += f" — {_one_line(topic.summary)}"
    lines = [f"{INDENT * depth}- {box} {text}"]
    for child in topic.children:
        lines += _item(child, depth + 1)
    return lines


def _one_line(text: str) -> str:
    return " ".join(text.split())
