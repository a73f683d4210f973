"""Notes are markdown; what is served is HTML rendered by markdown-it and cleaned by nh3.

markdown-it is configured not to pass raw HTML through, and nh3 (the Rust `ammonia`
sanitiser) then keeps only an allow-list of tags, attributes and URL schemes: two independent
layers, so one bug does not make a learner's note a stored XSS.
"""

from __future__ import annotations

import nh3
from markdown_it import MarkdownIt

_markdown = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
URL_SCHEMES = frozenset({"http", "https", "mailto"})


def render_note(markdown: str) -> str:
    html = _markdown.render(markdown)
    return nh3.clean(html, url_schemes=set(URL_SCHEMES), link_rel="noopener noreferrer nofollow")
