"""Markdown tables as checklists: trackers kept as "| # | Topic | Status | Link |" rows.

A row is a topic. Its title is the column headed "Title", "Name", "Problem", "Task"... if there
is one, else the first column with words in it (not a row number, a date or a status); a
column whose header or cells read as a status ("Status", "Done", ✅/❌,
"In progress") sets the row's status; a "Description"/"Notes" column is its summary; every
http(s) link in the row is a resource. A table with no column to take titles from is refused
with its line rather than imported as numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from markdown_it.tree import SyntaxTreeNode

from skilltree.roadmaps.document import ResourceDoc, TopicStatus
from skilltree.roadmaps.importing.text import collapse_spaces, strip_decoration

STATUS_HEADERS = frozenset(
    {"status", "state", "done", "progress", "completed", "complete", "solved", "check", "✓", "✅"}
)
SUMMARY_HEADERS = frozenset(
    {"description", "notes", "note", "summary", "details", "comment", "comments", "why", "what"}
)
STATUS_VALUES: dict[str, TopicStatus] = {
    **dict.fromkeys(
        (
            "✅",
            "✔",
            "✔️",
            "☑",
            "☑️",
            "✓",
            "[x]",
            "x",
            "yes",
            "y",
            "done",
            "completed",
            "complete",
            "solved",
            "finished",
            "100%",
            "🟢",
        ),
        "done",
    ),
    **dict.fromkeys(
        (
            "🟡",
            "⏳",
            "🚧",
            "🔄",
            "[/]",
            "in progress",
            "in-progress",
            "doing",
            "wip",
            "ongoing",
            "running",
            "started",
            "learning",
            "reading",
        ),
        "in_progress",
    ),
    **dict.fromkeys(("[-]", "skipped", "skip", "n/a", "na", "➖", "⏭️", "⏭"), "skipped"),
    **dict.fromkeys(
        (
            "❌",
            "✗",
            "✘",
            "⬜",
            "☐",
            "🔲",
            "🔴",
            "[ ]",
            "no",
            "n",
            "todo",
            "to do",
            "to-do",
            "not started",
            "pending",
            "planned",
            "-",
            "",
        ),
        "todo",
    ),
}
_HAS_WORD = re.compile(r"[^\W\d_]{2,}")


@dataclass
class TableRow:
    line: int
    title: str
    summary: str = ""
    status: TopicStatus | None = None
    resources: list[ResourceDoc] = field(default_factory=list)


@dataclass
class TableRows:
    rows: list[TableRow]
    skipped: list[tuple[int, str]]


class TableWithoutTitles(ValueError):
    """No column of the table holds titles."""


@dataclass
class _Cell:
    text: str
    links: list[ResourceDoc]


def read_table(table: SyntaxTreeNode) -> TableRows:
    """The rows of a table as topics; TableWithoutTitles if no column can be their title."""
    header = [_cell(cell).text for cell in _rows(table, "thead")[0].children]
    body = _rows(table, "tbody")
    cells = [[_cell(cell) for cell in row.children] for row in body]
    width = len(header)
    status_column = _status_column(header, cells)
    summary_column = next(
        (
            i
            for i, name in enumerate(header)
            if _key(name) in SUMMARY_HEADERS and i != status_column
        ),
        None,
    )
    title_column = _title_column(header, cells, {status_column, summary_column})
    if title_column is None:
        raise TableWithoutTitles
    rows: list[TableRow] = []
    skipped: list[tuple[int, str]] = []
    for row, row_cells in zip(body, cells, strict=True):
        line = (row.map[0] + 1) if row.map else 0
        row_cells = row_cells + [_Cell("", [])] * (width - len(row_cells))
        title = strip_decoration(row_cells[title_column].text)
        if not _HAS_WORD.search(title):
            skipped.append((line, " | ".join(c.text for c in row_cells)))
            continue
        status = (
            STATUS_VALUES.get(_key(row_cells[status_column].text))
            if status_column is not None
            else None
        )
        summary = row_cells[summary_column].text if summary_column is not None else ""
        resources = [link for cell in row_cells for link in cell.links]
        rows.append(TableRow(line, title, summary, status, _unique(resources)))
    return TableRows(rows, skipped)


def _rows(table: SyntaxTreeNode, part: str) -> list[SyntaxTreeNode]:
    for child in table.children:
        if child.type == part:
            return list(child.children)
    return []


def _status_column(header: list[str], cells: list[list[_Cell]]) -> int | None:
    for index, name in enumerate(header):
        if _key(name) in STATUS_HEADERS:
            return index
    for index in range(len(header)):
        values = [_key(row[index].text) for row in cells if index < len(row)]
        filled = [value for value in values if value]
        if (
            filled
            and all(value in STATUS_VALUES for value in values)
            and not all(value in ("-", "n", "x", "y") for value in filled)
        ):
            return index
    return None


# A column with one of these headers names the row, even when a broader column comes first
# ("| Date | Topic | Problem |": the problem is the topic, its area a category).
TITLE_HEADERS = ("title", "name", "problem", "task", "item", "question", "lesson", "chapter")


def _title_column(
    header: list[str], cells: list[list[_Cell]], taken: set[int | None]
) -> int | None:
    by_name = [i for i, name in enumerate(header) if _key(name) in TITLE_HEADERS]
    for index in by_name + list(range(len(header))):
        if index in taken:
            continue
        values = [row[index].text for row in cells if index < len(row)]
        if any(_HAS_WORD.search(strip_decoration(value)) for value in values):
            return index
    return None


def _cell(node: SyntaxTreeNode) -> _Cell:
    if not node.children:
        return _Cell("", [])
    inline = node.children[0]
    parts: list[str] = []
    links: list[ResourceDoc] = []
    for child in inline.children:
        text = _plain(child)
        parts.append(text)
        href = str(child.attrs.get("href", "")) if child.type == "link" else ""
        label = collapse_spaces(text)
        if href.startswith(("http://", "https://")) and label:
            links.append(ResourceDoc(title=label, url=href, type="link"))
    return _Cell(collapse_spaces("".join(parts)), links)


def _plain(node: SyntaxTreeNode) -> str:
    if node.type in ("text", "code_inline"):
        return node.content
    if node.type in ("softbreak", "hardbreak"):
        return " "
    if node.type in ("html_inline", "image"):
        return ""
    return "".join(_plain(child) for child in node.children)


def _key(text: str) -> str:
    return collapse_spaces(text).casefold().strip(" *_`")


def _unique(resources: list[ResourceDoc]) -> list[ResourceDoc]:
    seen: set[str] = set()
    kept = []
    for resource in resources:
        if resource.url not in seen:
            seen.add(resource.url)
            kept.append(resource)
    return kept
