"""Proactive content negotiation (RFC 9110 §12.5.1): pick a representation from `Accept`.

The server offers its media types in order of preference; the client's `Accept` ranks ranges
with q-values. For each offer the most specific matching range decides its weight
(`text/csv` beats `text/*` beats `*/*`); the heaviest offer wins and ties go to the server's
order. No header means "anything". When every offer weighs zero the answer is 406, listing
what is available, rather than a representation the client said it cannot use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from skilltree.platform.errors import DomainError


class NotAcceptable(DomainError):
    status = 406
    type_slug = "not-acceptable"
    title = "Not acceptable"

    def __init__(self, offered: Sequence[str]) -> None:
        super().__init__(
            "None of the media types in Accept is available here.", available=list(offered)
        )


@dataclass(frozen=True)
class MediaRange:
    type: str
    subtype: str
    quality: float

    def matches(self, media_type: str) -> bool:
        kind, _, subtype = media_type.partition("/")
        return self.type in ("*", kind) and self.subtype in ("*", subtype)

    @property
    def specificity(self) -> int:
        return (self.type != "*") + (self.subtype != "*")


def parse_accept(header: str) -> list[MediaRange]:
    """The media ranges of an Accept header; malformed members are ignored, never fatal."""
    ranges: list[MediaRange] = []
    for member in header.split(","):
        media_range, *parameters = (part.strip() for part in member.split(";"))
        kind, slash, subtype = media_range.lower().partition("/")
        if not slash or not kind or not subtype or (kind == "*" and subtype != "*"):
            continue
        quality = _quality(parameters)
        if quality is not None:
            ranges.append(MediaRange(kind, subtype, quality))
    return ranges


def negotiate(accept: str | None, offered: Sequence[str]) -> str:
    """The offered media type the client prefers; NotAcceptable when it accepts none of them."""
    if not accept or not accept.strip():
        return offered[0]
    ranges = parse_accept(accept)
    best, best_quality = None, 0.0
    for media_type in offered:
        quality = _weight(ranges, media_type)
        if quality > best_quality:
            best, best_quality = media_type, quality
    if best is None:
        raise NotAcceptable(offered)
    return best


def _weight(ranges: Sequence[MediaRange], media_type: str) -> float:
    matching = [r for r in ranges if r.matches(media_type)]
    if not matching:
        return 0.0
    return max(matching, key=lambda r: r.specificity).quality


def _quality(parameters: Sequence[str]) -> float | None:
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "q":
            try:
                quality = float(value.strip())
            except ValueError:
                return None
            return quality if 0.0 <= quality <= 1.0 else None
    return 1.0
