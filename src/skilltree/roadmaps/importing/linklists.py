"""Lists and paragraphs that are navigation, not topics: tables of contents, translation and
badge link lists, and prose instructions written as bullets.

README-style study plans open with a list of in-page anchors (`[Arrays](#arrays)`), a row of
badges, links to the same file in other languages, and "how to use this" bullets. Made into
topics they would take the real sections' slugs and fill the tree with empty sections.
"""

from __future__ import annotations

import re

from markdown_it.tree import SyntaxTreeNode

from skilltree.roadmaps.importing.text import is_decoration

# Link texts that name a language in that language (and English): a translation list.
LANGUAGE_NAMES = frozenset(
    name.casefold()
    for name in (
        "English",
        "Español",
        "Português",
        "Português (Brasil)",
        "Português do Brasil",
        "Français",
        "Deutsch",
        "Italiano",
        "Nederlands",
        "Polski",
        "Русский",
        "Українська",
        "Čeština",
        "Slovenčina",
        "Magyar",
        "Română",
        "Български",
        "Српски",
        "Hrvatski",
        "Ελληνικά",
        "Türkçe",
        "Svenska",
        "Norsk",
        "Dansk",
        "Suomi",
        "Eesti",
        "Lietuvių",
        "Latviešu",
        "עברית",
        "العربية",
        "فارسی",
        "اردو",
        "हिन्दी",
        "বাংলা",
        "தமிழ்",
        "తెలుగు",
        "मराठी",
        "ไทย",
        "Tiếng Việt",
        "Bahasa Indonesia",
        "Bahasa Melayu",
        "Filipino",
        "中文",
        "简体中文",
        "繁體中文",
        "中文版本",
        "日本語",
        "한국어",
        "Kiswahili",
        "Uzbek",
        "Oʻzbekcha",
        "Қазақша",
        "ქართული",
        "Հայերեն",
        "Azərbaycan",
        "Afrikaans",
    )
)
# Connectors between links on one line ("[A](#a) · [B](#b) | [C](#c)").
_CONNECTOR = re.compile(r"^[\s|·•,/–—\-:()\[\]]*$")
_TRANSLATION_PATH = re.compile(r"(?:^|/)(?:translations?|i18n|lang)/|readme[._-][a-z]{2}", re.I)
# A bullet that is a sentence addressed to the reader: long, no link, ends like a sentence.
PROSE_MIN_WORDS = 10
_SENTENCE_END = (".", "!", "?", ":")


def link_list_kind(block: SyntaxTreeNode) -> str | None:
    """'table of contents' or 'link list' when every item (at any depth) is only links of
    that kind; None for an ordinary list."""
    links: list[SyntaxTreeNode] = []
    if not _only_links(block, links) or not links:
        return None
    if all(str(link.attrs.get("href", "")).startswith("#") for link in links):
        return "table of contents"
    if all(_is_badge(link) or _is_translation(link) for link in links):
        return "link list"
    return None


def paragraph_link_kind(inline: SyntaxTreeNode) -> str | None:
    """The same test for a paragraph of links ("[Arrays](#arrays) · [Trees](#trees)")."""
    links: list[SyntaxTreeNode] = []
    if not _inline_only_links(inline, links) or not links:
        return None
    if all(str(link.attrs.get("href", "")).startswith("#") for link in links):
        return "table of contents"
    if all(_is_badge(link) or _is_translation(link) for link in links):
        return "link list"
    return None


def is_prose_instruction(text: str, has_links: bool, has_children: bool) -> bool:
    """'Fork this repository and tick each box as you finish it.' is advice, not a topic."""
    return (
        not has_links
        and not has_children
        and text.rstrip().endswith(_SENTENCE_END)
        and len(text.split()) >= PROSE_MIN_WORDS
    )


def is_legend(text: str) -> bool:
    """'⭐ = Essential': a key to the symbols the list uses, not a topic."""
    stripped = text.lstrip()
    index = 0
    while index < len(stripped) and is_decoration(stripped[index]):
        index += 1
    return index > 0 and stripped[index:].lstrip().startswith(("=", ":"))


def _only_links(node: SyntaxTreeNode, links: list[SyntaxTreeNode]) -> bool:
    for item in node.children:
        for child in item.children:
            if child.type in ("bullet_list", "ordered_list"):
                if not _only_links(child, links):
                    return False
            elif child.type == "paragraph":
                if not child.children or not _inline_only_links(child.children[0], links):
                    return False
            else:
                return False
    return True


def _inline_only_links(inline: SyntaxTreeNode, links: list[SyntaxTreeNode]) -> bool:
    for child in inline.children:
        if child.type in ("link", "image"):
            links.append(child)
        elif not _is_connector(child):
            return False
    return True


def _is_connector(node: SyntaxTreeNode) -> bool:
    if node.type in ("softbreak", "hardbreak", "html_inline"):
        return True
    return node.type == "text" and bool(_CONNECTOR.match(node.content))


def _is_badge(link: SyntaxTreeNode) -> bool:
    return link.type == "image" or any(child.type == "image" for child in link.children)


def _is_translation(link: SyntaxTreeNode) -> bool:
    label = "".join(child.content for child in link.children if child.type == "text")
    href = str(link.attrs.get("href", ""))
    return label.strip().casefold() in LANGUAGE_NAMES or bool(_TRANSLATION_PATH.search(href))
