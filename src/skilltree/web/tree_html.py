"""The roadmap page's tree, written as HTML by plain string joins from a kept skeleton.

The built-in roadmap has hundreds of topics, and a signed-in learner's page carries a status
form per topic. Through Jinja2 macros that is tens of thousands of calls (macro frames,
attribute lookups, an escape per value) and most of the page's CPU. Most of the markup is the
same for every learner and changes only with the roadmap: slugs, titles, summaries, estimates,
links. So the tree is compiled once per roadmap version into a `TreeSkeleton`, its text in
pieces with holes where a view differs (a topic's status, a parent's progress bar, the pressed
status button, the session's CSRF token); a view fills the holes and joins the pieces.

The pieces are UTF-8 bytes: the page is sent as bytes, and a title with one character beyond
Latin-1 makes Python hold the whole joined text at two bytes a character, which then costs as
much to encode as the rest of the tree's work (templating.py `page` splices the bytes in).

The markup is exactly what the template wrote before (tests/web/test_roadmap_page.py renders
both and compares them), so the page's script and styles see the same document.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup

from skilltree.web.views import Bar, Row, walk


def escape(value: object) -> str:
    """As markupsafe's `escape` (what Jinja2's autoescape applies), as a plain str: without a
    `Markup` object per value, which was most of the cost of escaping a thousand values."""
    return (
        str(value)
        .replace("&", "&amp;")
        .replace(">", "&gt;")
        .replace("<", "&lt;")
        .replace("'", "&#39;")
        .replace('"', "&#34;")
    )


@dataclass(frozen=True, slots=True)
class Outline:
    """What the skeleton shows of a topic: the same for every learner."""

    slug: str
    title: str
    summary: str
    estimate_hours: float | None
    children: Sequence[Any]


# How to read a node of some tree (a Row, a roadmap's TopicNode) as an `Outline`.
Reader = Callable[[Any], Outline]


@dataclass
class TreeSkeleton:
    """A tree's markup in pieces, with holes (empty pieces) where a view differs.

    Nodes are numbered in tree order (a node, then its subtree), as `views.walk` and the
    roll-up's states list them; each hole names its node by that number.
    """

    parts: list[bytes] = field(default_factory=list)
    nodes: int = 0
    status_holes: list[tuple[int, int]] = field(default_factory=list)  # (part, node)
    button_holes: list[tuple[int, int]] = field(default_factory=list)
    bar_holes: list[tuple[int, int, str]] = field(default_factory=list)  # and the bar's label
    csrf_holes: list[int] = field(default_factory=list)
    labels: Mapping[str, str] = field(default_factory=dict)
    # The four buttons as they read for each status, and each status as an attribute value:
    # the same for every topic.
    buttons: dict[str | None, bytes] = field(default_factory=dict)
    status_values: dict[str | None, bytes] = field(default_factory=dict)
    # The tree as a visitor sees it (no status, no bar, no token), filled with the first.
    _blank: bytes | None = None

    def blank(self) -> bytes:
        """The tree with no learner's states: the same for every visitor of this version."""
        if self._blank is None:
            self._blank = self.fill([None] * self.nodes, [None] * self.nodes, None)
        return self._blank

    def fill(
        self, statuses: Sequence[str | None], bars: Sequence[Bar | None], csrf: str | None
    ) -> bytes:
        """The tree as one learner sees it (each node's status and bar, in tree order), as
        UTF-8. Every piece was escaped where it was written or filled in."""
        out = self.parts.copy()
        values = self.status_values
        for part, node in self.status_holes:
            status = statuses[node]
            value = values.get(status)
            out[part] = value if value is not None else escape(status).encode()
        buttons = self.buttons
        for part, node in self.button_holes:
            status = statuses[node]
            found = buttons.get(status)
            out[part] = found if found is not None else _buttons(self.labels, status).encode()
        for part, node, label in self.bar_holes:
            bar = bars[node]
            if bar is not None:
                out[part] = bar_html(bar, label).encode()
        if self.csrf_holes:
            token = escape(csrf or "").encode()
            for part in self.csrf_holes:
                out[part] = token
        return b"".join(out)


def compile_tree(
    roadmap_slug: str,
    sections: Sequence[Any],
    labels: Mapping[str, str],
    read: Reader,
    *,
    forms: bool,
) -> TreeSkeleton:
    """The skeleton of a tree; with `forms` (a signed-in learner's view), a status form per
    topic."""
    skeleton = TreeSkeleton(labels=labels)
    skeleton.buttons = {status: _buttons(labels, status).encode() for status in (*labels, None)}
    skeleton.status_values = {status: escape(status or "").encode() for status in (*labels, None)}
    writer = _SkeletonWriter(skeleton, escape(roadmap_slug), read, forms)
    for section in sections:
        writer.section(section)
    writer.finish()
    return skeleton


def tree_html(
    roadmap_slug: str,
    sections: Sequence[Row],
    labels: Mapping[str, str],
    csrf: str | None,
) -> Markup:
    """The sections of the tree; with `csrf` (a signed-in learner), a status form per topic."""
    skeleton = compile_tree(roadmap_slug, sections, labels, read_row, forms=csrf is not None)
    rows = list(walk(sections))
    filled = skeleton.fill([row.status for row in rows], [row.bar for row in rows], csrf)
    return Markup(filled.decode())  # noqa: S704  (escaped where written and filled in)


def read_row(row: Row) -> Outline:
    return Outline(row.slug, row.title, row.summary, row.estimate_hours, row.children)


def bar_html(bar: Bar, label: str) -> str:
    """The progress bar macro's markup (templates/macros.html `bar`)."""
    percent = f"{bar.percent:.0f}"
    return (
        '<div class="progress" data-bar>\n'
        f'  <progress max="100" value="{escape(bar.percent)}" aria-label="{escape(label)}">'
        f"{percent}%</progress>\n"
        f'  <span class="figures"><span data-done>{bar.done}</span>/<span data-counted>'
        f"{bar.counted}</span> · <span data-percent>{percent}</span>%</span>\n"
        "</div>"
    )


def estimate_text(hours: float) -> str:
    """As the template's `round(1)|string|replace('.0', '')`."""
    return str(round(hours, 1)).replace(".0", "")


class _SkeletonWriter:
    def __init__(self, skeleton: TreeSkeleton, roadmap: str, read: Reader, forms: bool) -> None:
        self.skeleton = skeleton
        self.pending: list[str] = []  # static text since the last hole, joined into one piece
        self.roadmap = roadmap
        self.read = read
        self.forms = forms

    def _node(self) -> int:
        number = self.skeleton.nodes
        self.skeleton.nodes += 1
        return number

    def text(self, piece: str) -> None:
        self.pending.append(piece)

    def _hole(self) -> int:
        parts = self.skeleton.parts
        self.finish()
        parts.append(b"")
        return len(parts) - 1

    def finish(self) -> None:
        self.skeleton.parts.append("".join(self.pending).encode())
        self.pending.clear()

    def _status(self, node: int) -> None:
        self.skeleton.status_holes.append((self._hole(), node))

    def _bar(self, node: int, title: str) -> None:
        self.skeleton.bar_holes.append((self._hole(), node, "Progress on " + title))

    def section(self, item: Any) -> None:
        node, outline = self._node(), self.read(item)
        slug, title = escape(outline.slug), escape(outline.title)
        self.text(f'<section class="section" id="t-{slug}" data-slug="{slug}" data-status="')
        self._status(node)
        self.text(f'" aria-labelledby="h-{slug}">\n<details open>\n')
        self.text(f'<summary><h2 id="h-{slug}">{title}</h2>')
        self._bar(node, outline.title)
        self.text(f'</summary>\n<p class="summary">{escape(outline.summary)}</p>\n')
        if outline.children:
            self.rows(outline.children, 1)
        self.text("</details>\n</section>\n")

    def rows(self, items: Sequence[Any], depth: int) -> None:
        self.text(f'<ul class="rows depth-{depth}">\n')
        for item in items:
            outline = self.read(item)
            if outline.children:
                self.group(outline, depth)
            else:
                self.topic(outline)
        self.text("</ul>")

    def group(self, outline: Outline, depth: int) -> None:
        node = self._node()
        slug, title = escape(outline.slug), escape(outline.title)
        self.text(f'<li class="group" id="t-{slug}" data-slug="{slug}" data-status="')
        self._status(node)
        self.text(f'">\n<details open><summary><span class="title">{title}</span>')
        self._bar(node, outline.title)
        self.text(
            f'</summary>\n<p class="about"><a href="/roadmaps/{self.roadmap}/topics/{slug}">'
            f"About {title}</a></p>\n"
        )
        self.rows(outline.children, depth + 1)
        self.text("\n</details>\n</li>\n")

    def topic(self, outline: Outline) -> None:
        node = self._node()
        slug, title = escape(outline.slug), escape(outline.title)
        self.text(f'<li class="topic" id="t-{slug}" data-slug="{slug}" data-status="')
        self._status(node)
        self.text('">\n')
        if self.forms:
            self.status_form(node, slug, title)
        self.text(f'<a class="title" href="/roadmaps/{self.roadmap}/topics/{slug}">{title}</a>')
        if outline.estimate_hours:
            text = escape(estimate_text(outline.estimate_hours))
            self.text(f' <span class="est">{text} h</span>')
        self.text("</li>\n")

    def status_form(self, node: int, slug: str, title: str) -> None:
        """The status_form macro's markup (templates/macros.html), without `next`."""
        self.text(
            f'<form class="status" method="post" action="/roadmaps/{self.roadmap}/topics/'
            f'{slug}/status">\n<input type="hidden" name="csrf_token" value="'
        )
        self.skeleton.csrf_holes.append(self._hole())
        self.text(f'"><div role="group" aria-label="Status of {title}">')
        self.skeleton.button_holes.append((self._hole(), node))
        self.text("</div>\n</form>")


def _buttons(labels: Mapping[str, str], status: str | None) -> str:
    return "".join(
        f'<button name="status" value="{escape(value)}" class="s-{escape(value)}" '
        f'aria-pressed="{"true" if status == value else "false"}" title="{escape(label)}">'
        f'<span class="sr">{escape(label)}</span></button>'
        for value, label in labels.items()
    )
