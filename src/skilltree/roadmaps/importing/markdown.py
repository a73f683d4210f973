"""Markdown checklists -> roadmap documents, by walking a real CommonMark syntax tree.

The rules (docs/importing.md has the full list with examples):
- the first H1 — or, without one, a first heading whose content is only sub-headings — is the
  roadmap title; other headings are sections, nested by level;
- list items are topics, nested lists their children; `[ ]`, `[x]`, `[/]`, `[-]` set a status,
  and so do a status word in brackets (`[Done]`, `[running]`), an outliner's keywords (`DONE`,
  `TODO`, `DOING`) in a list that uses them, an item struck through whole (done) and an
  opening status emoji (✅, 🚧) that not every item of the list opens with;
- a paragraph that is only bold text ending in ":" labels the list that follows (a group);
- a one-line numbered item followed by plain paragraphs starts a "plain-line" section whose
  lines are its topics (the format of notes pasted from a document);
- other paragraphs, and list items that open with a call-out emoji (👉 🔥 ...), are prose:
  reported as skipped, never topics; headings left without topics are dropped;
- tables of contents, translation and badge link lists, and long sentences written as bullets
  are navigation or advice: reported as skipped;
- a table's rows are topics (tables.py);
- code blocks, HTML and block quotes are ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode
from mdit_py_plugins.tasklists import tasklists_plugin

from skilltree.roadmaps.document import (
    ResourceDoc,
    ResourceType,
    RoadmapDoc,
    TopicDoc,
    TopicStatus,
)
from skilltree.roadmaps.importing.errors import RoadmapImportError
from skilltree.roadmaps.importing.linklists import (
    is_legend,
    is_prose_instruction,
    link_list_kind,
    paragraph_link_kind,
)
from skilltree.roadmaps.importing.model import ImportLimits, SourceItem, check_item_lines
from skilltree.roadmaps.importing.tables import STATUS_VALUES, TableWithoutTitles, read_table
from skilltree.roadmaps.importing.text import (
    collapse_spaces,
    normalize_key,
    split_title,
    starts_with_decoration,
    strip_decoration,
)

# Emoji that open a remark addressed to the reader rather than a topic.
CALLOUT_EMOJI = frozenset("👉👇🔥💥❌💡💪✨")
TEXT_MARKERS: dict[str, TopicStatus] = {"[/]": "in_progress", "[-]": "skipped", "[ ]": "todo"}
# "- [Done] TypeScript": the status words a table's status column knows, written in brackets
# where a box would be. Words only (`[x]`, `[n/a]` or `[1]` are not), so "[RFC 9110] Semantics"
# or "[x86] Assembly" keep their brackets.
BRACKETED_WORDS: dict[str, TopicStatus] = {
    word: status
    for word, status in STATUS_VALUES.items()
    if len(word) > 2 and word.replace(" ", "").replace("-", "").isalpha()
}
# An outliner's task keyword opening an item ("- DONE Learn HTTP", Logseq and org-mode): in
# capitals only, so that "Done right: retries" keeps its first word, and only in a list where
# more than one item opens with one, so that "- TODO app in React" among ideas stays whole.
TASK_KEYWORDS: dict[str, TopicStatus] = {
    **dict.fromkeys(("DONE",), "done"),
    **dict.fromkeys(("TODO", "LATER", "WAITING"), "todo"),
    **dict.fromkeys(("DOING", "NOW"), "in_progress"),
    **dict.fromkeys(("CANCELED", "CANCELLED"), "skipped"),
}
# An emoji opening an item that says where it stands ("✅ REST design"), unless every item of
# its list opens with it: then it is the list's bullet style.
STATUS_EMOJI: dict[str, TopicStatus] = {
    **dict.fromkeys("✅✔☑", "done"),
    **dict.fromkeys("🚧⏳🔄", "in_progress"),
}
# ❌ opens advice ("❌ Don't store passwords": CALLOUT_EMOJI), except in a list whose other items
# are ticked with a done emoji: there it is the cross of one not done.
NOT_DONE_EMOJI = "❌"
_LINE_BREAK_TAG = re.compile(r"<br\s*/?>", re.IGNORECASE)
_BRACKETED = re.compile(r"\[([^\[\]]{3,20})\](?:\s|$)")
RESOURCE_TYPES: frozenset[str] = frozenset(
    {"link", "spec", "docs", "article", "book", "video", "course", "tool"}
)

MAX_TITLE_LENGTH = 300
ELLIPSIS = "…"

_parser = MarkdownIt("commonmark").enable(["table", "strikethrough"]).use(tasklists_plugin)


@dataclass
class Draft:
    """A topic under construction; `kind` decides whether an empty one survives."""

    title: str
    line: int
    kind: str  # "heading" | "group" | "item"
    level: int = 0  # heading level, for nesting
    depth: int = 0  # sections are 1, their topics 2, ...
    summary: str = ""
    status: TopicStatus | None = None
    resources: list[ResourceDoc] = field(default_factory=list)
    children: list[Draft] = field(default_factory=list)
    plain_lines: bool = False  # a section whose paragraphs are its items
    tags: list[str] = field(default_factory=list)
    checkbox: bool | None = None  # items: written as a task ("- [ ]") or a plain bullet
    # The children by what makes two of them one (`_merge_key`): a duplicate is found in one
    # lookup, not by comparing it with every sibling (quadratic in a long list).
    merge_index: dict[tuple[str, str, tuple[str, ...]], Draft] = field(default_factory=dict)


@dataclass(frozen=True)
class ListOpenings:
    """How the items of one list open: the emoji every one of them opens with (its bullet
    style), if any, and whether any is ticked with a done emoji."""

    shared: str | None
    ticked: bool
    keywords: int  # items opening with an outliner's task keyword


@dataclass
class MarkdownResult:
    document: RoadmapDoc
    items: list[SourceItem]
    skipped: list[tuple[int, str]]
    warnings: list[str]


def parse_markdown(text: str, limits: ImportLimits, source_name: str | None) -> MarkdownResult:
    check_item_lines(text, limits, "markdown")
    return _Walker(limits).walk(text, source_name)


class _Walker:
    def __init__(self, limits: ImportLimits) -> None:
        self.limits = limits
        self.root = Draft(title="", line=0, kind="root")
        self.sections: list[Draft] = []  # the heading stack, outermost first
        self.title: str | None = None
        self.description: list[str] = []
        self.items: list[SourceItem] = []
        self.skipped: list[tuple[int, str]] = []
        self.warnings: list[str] = []
        self.pending_group: Draft | None = None
        self.seen_section = False
        self.topic_count = 0
        # By list (its node's id; the tree outlives the walk): `ListOpenings`.
        self.openings: dict[int, ListOpenings] = {}

    def walk(self, text: str, source_name: str | None) -> MarkdownResult:
        blocks = SyntaxTreeNode(_parser.parse(text)).children
        title_index = _title_heading_index(blocks)
        for index, block in enumerate(blocks):
            if index == title_index:
                self.title = strip_decoration(_inline_text(block))
                continue
            self._block(block, blocks[index + 1] if index + 1 < len(blocks) else None)
        topics = [_finish(child) for child in _prune(self.root.children)]
        title = self.title or _title_from_name(source_name)
        if not topics:
            raise _no_topics(blocks, title_index)
        document = RoadmapDoc(
            title=title, description=collapse_spaces(" ".join(self.description)), topics=topics
        )
        return MarkdownResult(document, self.items, self.skipped, self.warnings)

    # --- blocks -------------------------------------------------------------------------

    def _block(self, block: SyntaxTreeNode, following: SyntaxTreeNode | None) -> None:
        if block.type == "heading":
            self._heading(block)
        elif block.type == "paragraph":
            self._paragraph(block, following)
        elif block.type == "table":
            self._table(block)
        elif block.type in ("bullet_list", "ordered_list"):
            kind = link_list_kind(block)
            if kind is not None:
                self._skip_list(block, kind)
            elif _is_plain_line_header(block, following):
                self._plain_line_section(block)
            else:
                container = self.pending_group or self._container()
                for item in block.children:
                    self._list_item(item, container)
            self.pending_group = None
        # hr, fences, code blocks, HTML and quotes carry no topics.

    def _skip_list(self, block: SyntaxTreeNode, kind: str) -> None:
        for item in block.children:
            self.skipped.append((_line(item), f"{kind}: {collapse_spaces(_item_text(item))}"))
            for child in item.children[1:]:
                if child.type in ("bullet_list", "ordered_list"):
                    self._skip_list(child, kind)

    def _table(self, block: SyntaxTreeNode) -> None:
        try:
            table = read_table(block)
        except TableWithoutTitles:
            raise RoadmapImportError(
                f"line {_line(block)}: a table with no column of titles (every column holds "
                "numbers, dates or statuses); give it a column that names each topic",
                line=_line(block),
            ) from None
        container = self.pending_group or self._container()
        self.pending_group = None
        self.skipped.extend(table.skipped)
        for row in table.rows:
            title, summary = split_title(row.title)
            summary = collapse_spaces(" ".join(part for part in (summary, row.summary) if part))
            self.items.append(SourceItem(line=row.line, title=title))
            draft = Draft(
                title, row.line, "item", summary=summary, status=row.status, resources=row.resources
            )
            self._add(container, draft)

    def _heading(self, block: SyntaxTreeNode) -> None:
        level = int(block.tag[1])
        resources: list[ResourceDoc] = []
        text = _inline_text(block)
        if block.children:
            resources, text, _ = _resources_and_text(block.children[0])
        title, summary = _split_heading(strip_decoration(collapse_spaces(text)))
        if not title:
            return
        while self.sections and self.sections[-1].level >= level:
            self.sections.pop()
        section = Draft(
            title=title,
            line=_line(block),
            kind="heading",
            level=level,
            summary=summary,
            resources=resources,
        )
        self._add(self._container(), section)
        self.sections.append(section)
        self.pending_group = None
        self.seen_section = True

    def _plain_line_section(self, block: SyntaxTreeNode) -> None:
        item = block.children[0]
        level = (
            (self.sections[-1].level + 1)
            if self.sections and not self.sections[-1].plain_lines
            else 2
        )
        while self.sections and (self.sections[-1].plain_lines or self.sections[-1].level >= level):
            self.sections.pop()
        section = Draft(
            title=strip_decoration(_inline_text(item.children[0])),
            line=_line(block),
            kind="heading",
            level=level,
            plain_lines=True,
        )
        self._add(self._container(), section)
        self.sections.append(section)
        self.seen_section = True

    def _paragraph(self, block: SyntaxTreeNode, following: SyntaxTreeNode | None) -> None:
        inline = block.children[0]
        label = _group_label(inline)
        if label is None and following is not None and following.type in _LISTS:
            label = _bold_label(inline)
        if label is not None:
            group = Draft(title=label, line=_line(block), kind="group")
            self._add(self._container(), group)
            self.pending_group = group
            return
        self.pending_group = None
        link_kind = paragraph_link_kind(inline)
        if link_kind is not None:
            self.skipped.append(
                (_line(block), f"{link_kind}: {collapse_spaces(_inline_text(block))}")
            )
            return
        if self.sections and self.sections[-1].plain_lines:
            for offset, line_text in enumerate(_inline_text(block).split("\n")):
                self._plain_item(line_text, _line(block) + offset, self.sections[-1])
            return
        text = collapse_spaces(_inline_text(block))
        if self.title is not None and not self.seen_section:
            self.description.append(strip_decoration(text))
        else:
            self.skipped.append((_line(block), text))

    def _plain_item(self, text: str, line: int, section: Draft) -> None:
        text = collapse_spaces(text)
        if not text:
            return
        title, summary = split_title(strip_decoration(text))
        self.items.append(SourceItem(line=line, title=title))
        self._add(
            section, Draft(title=title, line=line, kind="item", summary=summary, checkbox=False)
        )

    def _list_item(self, item: SyntaxTreeNode, container: Draft) -> None:
        line = _line(item)
        inline = _first_inline(item)
        if inline is not None and paragraph_link_kind(inline) == "table of contents":
            # "- [x] - [Trees](#trees)" in a list that also holds real items: this entry only
            # points at a section further down.
            self.skipped.append(
                (line, f"table of contents: {collapse_spaces(_plain_text(inline))}")
            )
            for child in item.children[1:]:
                if child.type in ("bullet_list", "ordered_list"):
                    for nested in child.children:
                        self._list_item(nested, container)
            return
        resources, text, spans = _resources_and_text(inline) if inline is not None else ([], "", [])
        status, text, spans = _status(inline, text, spans)
        if status is None:
            status, text, spans = self._keyword_status(item, text, spans)
        shown = self._status_shown(item, inline) if status is None else None
        status = status or shown
        has_children = any(c.type in ("bullet_list", "ordered_list") for c in item.children[1:])
        if is_legend(text):
            self.skipped.append((line, f"legend: {collapse_spaces(text)}"))
            return
        if (shown is None and starts_with_decoration(text) in CALLOUT_EMOJI) or (
            status is None and is_prose_instruction(text, bool(spans), has_children)
        ):
            self.skipped.append((line, text))
            return
        title, summary = _split_item(text, spans)
        title, tags = _trailing_tags(title, _bold_words(inline))
        draft = container
        if title:
            draft = Draft(
                title,
                line,
                "item",
                summary=summary,
                status=status,
                resources=resources,
                tags=tags,
                checkbox=status is not None,
            )
            self.items.append(SourceItem(line=line, title=title))
            draft = self._add(container, draft)
        for child in item.children[1:]:
            if child.type in ("bullet_list", "ordered_list"):
                for nested in child.children:
                    self._list_item(nested, draft)

    def _keyword_status(
        self, item: SyntaxTreeNode, text: str, spans: list[tuple[int, int]]
    ) -> tuple[TopicStatus | None, str, list[tuple[int, int]]]:
        """`_keyword_status`, where the item's list uses the keywords (more than one of its
        items opens with one); the list is read only for an item that opens with one."""
        keyworded = _keyword_status(text, spans)
        if keyworded[0] is None or self._openings_of(item).keywords < 2:
            return None, text, spans
        return keyworded

    def _status_shown(
        self, item: SyntaxTreeNode, inline: SyntaxTreeNode | None
    ) -> TopicStatus | None:
        """The status of an item without a box: done when struck through whole ("~~HTTP~~"),
        or what its opening status emoji says."""
        if inline is None:
            return None
        written = [c for c in inline.children if not (c.type == "text" and not c.content.strip())]
        if len(written) == 1 and written[0].type == "s":
            return "done"
        emoji = starts_with_decoration(_plain_text(inline))
        if emoji is None:
            return None
        openings = self._openings_of(item)
        if emoji == openings.shared:
            return None  # the list's bullet style
        if emoji == NOT_DONE_EMOJI:
            return "todo" if openings.ticked else None
        return STATUS_EMOJI.get(emoji)

    def _openings_of(self, item: SyntaxTreeNode) -> ListOpenings:
        """How the items of `item`'s list open, read once per list."""
        parent = item.parent
        found = self.openings.get(id(parent))
        if found is None:
            siblings = parent.children if parent is not None else [item]
            texts = [_item_text(sibling) for sibling in siblings]
            emoji = {starts_with_decoration(text) for text in texts}
            found = self.openings[id(parent)] = ListOpenings(
                shared=next(iter(emoji)) if len(siblings) > 1 and len(emoji) == 1 else None,
                ticked=any(STATUS_EMOJI.get(opening or "") == "done" for opening in emoji),
                keywords=sum(1 for text in texts if _keyword_status(text, [])[0] is not None),
            )
        return found

    # --- tree building ------------------------------------------------------------------

    def _container(self) -> Draft:
        return self.sections[-1] if self.sections else self.root

    def _add(self, container: Draft, draft: Draft) -> Draft:
        """Append, merging a duplicate under the same parent into the first one.

        Sections and groups merge by title; items only when they are the same item (same
        title and same links): "Lecture 10" and "Lecture 11" linked apart are two topics.
        """
        key = (draft.kind, *_merge_key(draft))
        sibling = container.merge_index.get(key)
        if sibling is not None:
            self.warnings.append(
                f"line {draft.line}: duplicate {draft.title!r} merged into line {sibling.line}"
            )
            return sibling
        draft.depth = container.depth + 1
        if draft.depth > self.limits.max_depth:
            raise RoadmapImportError(
                f"line {draft.line}: topics nested deeper than {self.limits.max_depth} levels",
                line=draft.line,
            )
        self.topic_count += 1
        if self.topic_count > self.limits.max_topics:
            raise RoadmapImportError(
                f"line {draft.line}: more than {self.limits.max_topics} topics", line=draft.line
            )
        container.children.append(draft)
        container.merge_index[key] = draft
        return draft


def _prune(drafts: list[Draft]) -> list[Draft]:
    """Drop headings and group labels that ended up with no topics under them."""
    kept = []
    for draft in drafts:
        draft.children = _prune(draft.children)
        if draft.kind == "item" or draft.children:
            kept.append(draft)
    return kept


def _merge_key(draft: Draft) -> tuple[str, tuple[str, ...]]:
    links = tuple(sorted(r.url for r in draft.resources)) if draft.kind == "item" else ()
    return normalize_key(draft.title), links


def _finish(draft: Draft) -> TopicDoc:
    title, summary = draft.title, draft.summary
    if len(title) > MAX_TITLE_LENGTH:
        # Cut at a word boundary; the whole text stays readable in the summary.
        cut = title[: MAX_TITLE_LENGTH - len(ELLIPSIS)]
        if " " in cut and not title[len(cut)].isspace():
            cut = cut.rsplit(" ", 1)[0]
        summary = f"{title}\n\n{summary}" if summary else title
        title = cut.rstrip() + ELLIPSIS
    return TopicDoc(
        title=title,
        summary=summary,
        status=draft.status,
        checkbox=draft.checkbox,
        resources=draft.resources,
        tags=draft.tags,
        line=draft.line,
        children=[_finish(child) for child in draft.children],
    )


def _title_heading_index(blocks: list[SyntaxTreeNode]) -> int | None:
    """The first H1; without one, a first heading followed directly by deeper headings, or a
    first heading before any list that no later heading matches in level ("### My plan")."""
    headings = [(i, b) for i, b in enumerate(blocks) if b.type == "heading"]
    if not headings:
        return None
    first_index, first = headings[0]
    if first.tag == "h1":
        return first_index
    if any(b.tag == "h1" for _, b in headings):
        return None
    before = blocks[:first_index]
    if not any(b.type in ("bullet_list", "ordered_list", "table") for b in before) and all(
        int(b.tag[1]) > int(first.tag[1]) for _, b in headings[1:]
    ):
        return first_index
    for block in blocks[first_index + 1 :]:
        if block.type == "heading":
            return first_index if int(block.tag[1]) > int(first.tag[1]) else None
        if block.type in ("bullet_list", "ordered_list", "paragraph"):
            return None
    return None


def _is_plain_line_header(block: SyntaxTreeNode, following: SyntaxTreeNode | None) -> bool:
    """'1. Routing' on its own, then plain paragraphs: a section in the plain-line format."""
    if block.type != "ordered_list" or len(block.children) != 1:
        return False
    item = block.children[0]
    return (
        len(item.children) == 1
        and item.children[0].type == "paragraph"
        and following is not None
        and following.type == "paragraph"
        and _group_label(following.children[0]) is None
    )


_LISTS = ("bullet_list", "ordered_list")


def _bold_label(inline: SyntaxTreeNode) -> str | None:
    """'**Part 1: TCP** 🔥' right above a list: bold text and decoration only, a group label."""
    children = [c for c in inline.children if not (c.type == "text" and not c.content.strip())]
    if not children or children[0].type != "strong":
        return None
    rest = "".join(_plain_text(c) for c in children[1:])
    if strip_decoration(rest):
        return None
    label = strip_decoration(collapse_spaces(_plain_text(children[0])).rstrip(":"))
    return label or None


def _group_label(inline: SyntaxTreeNode) -> str | None:
    """'**SQL (Relational):**' -> 'SQL (Relational)'; None unless the paragraph is only that."""
    children = [c for c in inline.children if not (c.type == "text" and not c.content.strip())]
    if len(children) != 1 or children[0].type != "strong":
        trailing_colon = (
            len(children) == 2
            and children[0].type == "strong"
            and children[1].content.strip() == ":"
        )
        if not trailing_colon:
            return None
    text = collapse_spaces(_plain_text(children[0]))
    if not (text.endswith(":") or (len(children) == 2)):
        return None
    label = strip_decoration(text.rstrip(":").strip())
    return label or None


def _status(
    inline: SyntaxTreeNode | None, text: str, spans: list[tuple[int, int]]
) -> tuple[TopicStatus | None, str, list[tuple[int, int]]]:
    """The task state of a list item, and the text (and link spans) without its marker."""
    if inline is not None:
        for child in inline.children:
            if child.type == "html_inline" and "task-list-item-checkbox" in child.content:
                return ("done" if 'checked="checked"' in child.content else "todo"), text, spans
    stripped = text.lstrip()
    for marker, status in TEXT_MARKERS.items():
        if stripped.startswith(marker + " ") or stripped == marker:
            return status, *_after_marker(text, stripped[len(marker) :], spans)
    bracketed = _BRACKETED.match(stripped)
    if bracketed is not None:
        worded = BRACKETED_WORDS.get(collapse_spaces(bracketed.group(1)).lower())
        if worded is not None:
            return worded, *_after_marker(text, stripped[bracketed.end() :], spans)
    return None, text, spans


def _keyword_status(
    text: str, spans: list[tuple[int, int]]
) -> tuple[TopicStatus | None, str, list[tuple[int, int]]]:
    """An outliner's task keyword opening the item's text ("DONE Learn HTTP"), and the text
    without it."""
    stripped = text.lstrip()
    keyword, _, rest = stripped.partition(" ")
    if keyword in TASK_KEYWORDS and rest.strip():
        return TASK_KEYWORDS[keyword], *_after_marker(text, rest, spans)
    return None, text, spans


def _after_marker(
    text: str, rest: str, spans: list[tuple[int, int]]
) -> tuple[str, list[tuple[int, int]]]:
    """The item's text after its status marker (`rest`), with its link spans moved to match."""
    shift = len(text) - len(rest.lstrip())
    return rest.lstrip(), [(a - shift, b - shift) for a, b in spans]


# A bold marker at the end of an item's title rates it ("Status codes **Core**"): a tag.
# Only these words, so that "Learn **Docker**" keeps its subject.
TAG_WORDS = frozenset(
    {
        "core", "essential", "important", "must", "must-know", "required", "recommended",
        "optional", "bonus", "advanced", "beginner", "intermediate", "basic", "easy", "medium",
        "hard", "new", "deep dive", "nice to have",
    }
)  # fmt: skip


def _bold_words(inline: SyntaxTreeNode | None) -> list[str]:
    if inline is None:
        return []
    return [collapse_spaces(_plain_text(c)) for c in inline.children if c.type == "strong"]


def _trailing_tags(title: str, bold: list[str]) -> tuple[str, list[str]]:
    """'HTTP methods Core' where 'Core' was bold -> ('HTTP methods', ['core'])."""
    tags: list[str] = []
    for word in reversed(bold):
        head = title[: -len(word) - 1] if title.endswith(" " + word) else ""
        if word.casefold() not in TAG_WORDS or not head.strip():
            break
        title = head.rstrip()
        tags.insert(0, word.casefold())
    return title, tags


def _split_heading(text: str) -> tuple[str, str]:
    """'Auth — who you are' -> ('Auth', 'who you are'). Only an em dash or // separates in a
    heading: 'DATABASE – SQL' and 'Client - Server' are whole section names."""
    for separator in (" — ", " // "):
        title, found, summary = text.partition(separator)
        if found and title.strip() and "(" not in title:
            return title.strip(), summary.strip()
    return text, ""


def _split_item(text: str, spans: list[tuple[int, int]]) -> tuple[str, str]:
    """Title and summary of an item's text; a separator inside link text does not split."""
    # Work on the raw text so the link spans stay aligned, then clean each half.
    title, summary = split_title(text, spans)
    return strip_decoration(collapse_spaces(title)), collapse_spaces(summary)


def _item_text(item: SyntaxTreeNode) -> str:
    inline = _first_inline(item)
    return _plain_text(inline) if inline is not None else ""


def _no_topics(blocks: list[SyntaxTreeNode], title_index: int | None) -> RoadmapImportError:
    headings = [b for i, b in enumerate(blocks) if b.type == "heading" and i != title_index]
    if headings:
        return RoadmapImportError(
            f"no topics found: {len(headings)} headings but no list items or table rows under them",
            line=_line(headings[0]),
        )
    return RoadmapImportError("no topics found: the file has no list items or tables", line=1)


def _first_inline(item: SyntaxTreeNode) -> SyntaxTreeNode | None:
    if (
        item.children
        and item.children[0].type in ("paragraph", "heading")
        and item.children[0].children
    ):
        return item.children[0].children[0]
    return None


def _resources_and_text(
    inline: SyntaxTreeNode,
) -> tuple[list[ResourceDoc], str, list[tuple[int, int]]]:
    """Links become resources; typed links ([@article@Title](url)) leave the title entirely.
    Also returns where each link's text sits in the item's text (never split there)."""
    resources: list[ResourceDoc] = []
    parts: list[str] = []
    spans: list[tuple[int, int]] = []
    for child in inline.children:
        if child.type == "link":
            href = str(child.attrs.get("href", ""))
            label = collapse_spaces(_plain_text(child))
            typed = _typed_label(label)
            if typed is not None:
                kind, label = typed
            else:
                kind = "link"
                start = sum(len(part) for part in parts)
                spans.append((start, start + len(label)))
                parts.append(label)
            # Only http(s) links are kept; nothing is ever fetched.
            if href.startswith(("http://", "https://")) and label:
                resources.append(ResourceDoc(title=label, url=href, type=kind))
        else:
            parts.append(_plain_text(child))
    return resources, "".join(parts), spans


def _typed_label(label: str) -> tuple[ResourceType, str] | None:
    if not label.startswith("@") or label.count("@") < 2:
        return None
    _, kind, title = label.split("@", 2)
    resource_type: ResourceType = kind.lower() if kind.lower() in RESOURCE_TYPES else "link"  # type: ignore[assignment]
    return resource_type, title.strip()


def _inline_text(block: SyntaxTreeNode) -> str:
    """The text of a heading or paragraph with emphasis removed; soft breaks kept as newlines."""
    if not block.children:
        return ""
    return _plain_text(block.children[0])


def _plain_text(node: SyntaxTreeNode) -> str:
    if node.type in ("text", "code_inline"):
        return node.content
    if node.type in ("softbreak", "hardbreak"):
        return "\n"
    if node.type == "html_inline" and _LINE_BREAK_TAG.fullmatch(node.content):
        return "\n"  # "NoSQL<br>document stores": two words
    if node.type in ("html_inline", "image"):
        return ""  # a badge's alt text is not part of a title
    return "".join(_plain_text(child) for child in node.children)


def _line(node: SyntaxTreeNode) -> int:
    return (node.map[0] + 1) if node.map else 0


def _title_from_name(source_name: str | None) -> str:
    if not source_name:
        return "Imported roadmap"
    stem = source_name.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return collapse_spaces(stem.replace("_", " ").replace("-", " ")) or "Imported roadmap"
