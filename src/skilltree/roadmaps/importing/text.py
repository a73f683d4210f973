"""Cleaning titles and making keys and slugs out of them."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from anyascii import anyascii

from skilltree.identity import MAX_SLUG_LENGTH

# Markers a checklist puts in front of a title: emoji, keycap digits (1️⃣, 🔟), bullets, arrows,
# and numbering such as "1." or "2)".
_KEYCAP = "\u20e3"
_NUMBERING = re.compile(r"^(?:\d+[.)]|[ivxlc]+\.|[-–—•·])\s+", re.IGNORECASE)
# "Title - description": the separators a person uses, surrounded by spaces.
_SEPARATORS = (" - ", " — ", " – ", " → ", " // ", " ✅ ", " ✔️ ", " ☑️ ")
_SPACES = re.compile(r"\s+")
_NON_ALNUM = re.compile(r"[^0-9a-z]+")
_KEY_NON_ALNUM = re.compile(r"[\W_]+", re.UNICODE)
_EMPHASIS = re.compile(r"(\*\*|__|\*|_|~~|`)")


def is_decoration(ch: str) -> bool:
    """Emoji, symbols, joiners and variation selectors: decoration, not words."""
    if ch in "\u200d\ufe0f\ufe0e" + _KEYCAP:
        return True
    return unicodedata.category(ch) in {"So", "Sk", "Cf", "Co", "Cn"}


def strip_decoration(text: str) -> str:
    """Drop leading and trailing emoji, keycap numbering ("1️⃣1️⃣", "🔟") and plain numbering."""
    text = _strip_leading_markers(text)
    end = len(text)
    while end > 0 and (is_decoration(text[end - 1]) or text[end - 1].isspace()):
        end -= 1
    return text[:end].strip()


def _strip_leading_markers(text: str) -> str:
    previous = None
    while previous != text:
        previous = text
        text = text.lstrip()
        index = 0
        while index < len(text) and (is_decoration(text[index]) or _is_keycap_digit(text, index)):
            index += 1
        text = text[index:]
        text = _NUMBERING.sub("", text, count=1) if _NUMBERING.match(text) else text
    return text


def _is_keycap_digit(text: str, index: int) -> bool:
    """A digit that is the base of a keycap emoji (the digit, then U+FE0F and/or U+20E3)."""
    if not text[index].isdigit():
        return False
    rest = text[index + 1 : index + 3]
    return rest.startswith(_KEYCAP) or rest == "\ufe0f" + _KEYCAP


def starts_with_decoration(text: str) -> str | None:
    """The leading emoji of the text, if it opens with one."""
    stripped = text.lstrip()
    if stripped and is_decoration(stripped[0]):
        return stripped[0]
    return None


def split_title(text: str, protected: Sequence[tuple[int, int]] = ()) -> tuple[str, str]:
    """'Title - description' -> ('Title', 'description'); separators inside () do not count,
    nor inside the `protected` spans (link text: "[CSE373 - Lecture 10](...)" is one title)."""
    depth = 0
    for index, ch in enumerate(text):
        if any(start <= index < end for start, end in protected):
            continue
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(0, depth - 1)
        elif depth == 0 and ch == " ":
            for separator in _SEPARATORS:
                if text.startswith(separator, index):
                    title, rest = text[:index], text[index + len(separator) :]
                    if title.strip():
                        return title.strip(), rest.strip()
    return text.strip(), ""


def collapse_spaces(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def normalize_key(text: str) -> str:
    """A matching key: NFKC, case-folded, emphasis removed, punctuation runs -> one space."""
    text = unicodedata.normalize("NFKC", text)
    text = _EMPHASIS.sub("", text).casefold()
    return _KEY_NON_ALNUM.sub(" ", text).strip()


def slugify(text: str) -> str:
    """ASCII, lowercase, hyphen-separated, at most 80 characters, never empty.

    Other scripts are transliterated ("Базы данных" -> "bazy-dannykh", "索引" -> "suoyin"), so
    a slug stays readable in a URL; emoji and symbols are dropped (docs/decisions/0031).
    """
    letters = "".join(ch for ch in text if not is_decoration(ch))
    ascii_text = anyascii(unicodedata.normalize("NFKC", letters)).lower()
    slug = _NON_ALNUM.sub("-", ascii_text).strip("-")
    if len(slug) > MAX_SLUG_LENGTH:
        slug = slug[:MAX_SLUG_LENGTH].rsplit("-", 1)[0] or slug[:MAX_SLUG_LENGTH]
    return slug.strip("-") or "topic"
