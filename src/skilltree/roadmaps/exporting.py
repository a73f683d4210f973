"""Render a roadmap document as a markdown checklist that the markdown importer reads back,
or as CSV for a spreadsheet.

Sections become `##` headings and everything below them nested list items, which keeps
sibling order exactly (sub-headings would force leaves before groups). An item is a task
(`- [ ]`, `- [x]`) or a plain bullet as its source wrote it; where the source did not say (YAML,
JSON), leaves — what a learner ticks — are tasks and a topic with children is a plain bullet,
since its state rolls up from them. A state of its own (done, in progress, skipped) always
shows as a box. Resources follow the title as typed
links (`[@docs@RFC 9110](https://…)`), which the importer turns back into resources and keeps
out of the title, so an export re-imports with its tree and its links.
"""

from __future__ import annotations

import csv
import io

from skilltree.roadmaps.document import RoadmapDoc, TopicDoc

INDENT = "  "
CSV_COLUMNS = ("path", "title", "level", "estimate_hours")
# Spreadsheet programs run a cell that starts with one of these as a formula (CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def to_markdown(document: RoadmapDoc) -> str:
    lines = [f"# {document.title}", ""]
    if document.description:
        lines += [_one_line(document.description), ""]
    for section in document.topics:
        lines += [f"## {section.title}{_links(section)}", ""]
        for child in section.children:
            lines += _item(child, depth=0)
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def to_csv(document: RoadmapDoc) -> str:
    """One row per topic in tree order; `path` is the slugs from its section down, joined by /."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # RFC 4180 line ends
    writer.writerow(CSV_COLUMNS)
    for path, topic in _paths(document.topics, ()):
        estimate = "" if topic.estimate_hours is None else f"{topic.estimate_hours:g}"
        writer.writerow(
            ["/".join(path), spreadsheet_safe(topic.title), topic.level or "", estimate]
        )
    return buffer.getvalue()


def spreadsheet_safe(text: str) -> str:
    """The cell text, with a leading ' if a spreadsheet would otherwise run it as a formula."""
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def _paths(
    topics: list[TopicDoc], parent: tuple[str, ...]
) -> list[tuple[tuple[str, ...], TopicDoc]]:
    rows: list[tuple[tuple[str, ...], TopicDoc]] = []
    for topic in topics:
        path = (*parent, topic.slug or "")
        rows.append((path, topic))
        rows.extend(_paths(topic.children, path))
    return rows


BOXES = {"done": "[x] ", "in_progress": "[/] ", "skipped": "[-] ", "todo": "[ ] "}


def _item(topic: TopicDoc, depth: int) -> list[str]:
    box = _box(topic)
    text = topic.title
    if topic.summary:
        text += f" — {_one_line(topic.summary)}"
    lines = [f"{INDENT * depth}- {box}{text}{_links(topic)}"]
    for child in topic.children:
        lines += _item(child, depth + 1)
    return lines


def _box(topic: TopicDoc) -> str:
    if topic.status not in (None, "todo"):
        return BOXES[topic.status]
    written_as_task = topic.checkbox if topic.checkbox is not None else not topic.children
    return BOXES["todo"] if written_as_task else ""


def _links(topic: TopicDoc) -> str:
    return "".join(f" [@{r.type}@{_link_text(r.title)}](<{r.url}>)" for r in topic.resources)


def _link_text(text: str) -> str:
    # Brackets and backslashes would end or escape the link text early.
    return "".join("\\" + ch if ch in "[]\\" else ch for ch in _one_line(text))


def _one_line(text: str) -> str:
    return " ".join(text.split())
