"""Notes are markdown; what is served is HTML rendered by markdown-it and cleaned by nh3.

Learners may write inline HTML in notes (`<details>`, `<kbd>`), as on most markdown sites, so
markdown-it passes it through and nh3 (the Rust `ammonia` sanitiser) decides what survives:
an allow-list of tags, attributes and URL schemes. Scripts, event-handler attributes and
`javascript:` URLs never reach a page, whatever the markdown looked like.
"""

from __future__ import annotations

from markdown_it import MarkdownIt

_markdown = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
URL_SCHEMES = frozenset({"http", "https", "mailto"})


def render_note(markdown: str) -> str:
    # nh3 (a 1.7 MiB extension) loads with the first note, not in every worker.
    import nh3

    html = _markdown.render(markdown)
    return nh3.clean(html, url_schemes=set(URL_SCHEMES), link_rel="noopener noreferrer nofollow")
