"""The SVG progress badge for READMEs, in the familiar two-part "label | value" style."""

from __future__ import annotations

from xml.sax.saxutils import escape

CHAR_WIDTH = 7  # px per character of 11 px Verdana, close enough for a badge
PADDING = 10
MAX_LABEL = 40


def render(label: str, percent_done: float) -> str:
    # The label is a roadmap title, chosen by whoever imported it: escaped, never trusted.
    if len(label) > MAX_LABEL:
        label = label[: MAX_LABEL - 1] + "…"
    value = f"{percent_done:g}%"
    left = len(label) * CHAR_WIDTH + PADDING
    right = len(value) * CHAR_WIDTH + PADDING
    width = left + right
    colour = _colour(percent_done)
    text, shown = escape(label), escape(value)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" role="img" '
        f'aria-label="{escape(label, {chr(34): "&quot;"})}: {shown}">'
        f"<title>{text}: {shown}</title>"
        f'<rect width="{left}" height="20" fill="#555"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="{colour}"/>'
        '<g fill="#fff" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11">'
        f'<text x="{PADDING // 2}" y="14">{text}</text>'
        f'<text x="{left + PADDING // 2}" y="14">{shown}</text>'
        "</g></svg>"
    )


def _colour(percent_done: float) -> str:
    if percent_done >= 100:
        return "#4c1"
    if percent_done >= 50:
        return "#97ca00"
    if percent_done > 0:
        return "#dfb317"
    return "#9f9f9f"
