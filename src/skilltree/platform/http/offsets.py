"""Offset pagination for short lists: `?limit=20&offset=40`, with RFC 8288 `Link` headers.

Offsets are simple and let a client jump to any page, but rows inserted while paging shift
later pages; long or fast-growing lists use cursor pagination instead. The same links are in the
body for clients that never read headers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request

MAX_LIMIT = 100


@dataclass(frozen=True)
class OffsetPage:
    limit: int
    offset: int


async def offset_page(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page")] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000, description="Items to skip")] = 0,
) -> OffsetPage:
    return OffsetPage(limit, offset)


OffsetParams = Annotated[OffsetPage, Depends(offset_page)]
PAGINATION_PARAMETERS = frozenset({"limit", "offset"})


def page_links(request: Request, page: OffsetPage, total: int) -> dict[str, str]:
    """first, prev and next as relative URLs that keep the request's filters and sort."""
    links = {"first": _url(request, page.limit, 0)}
    if page.offset > 0:
        links["prev"] = _url(request, page.limit, max(page.offset - page.limit, 0))
    if page.offset + page.limit < total:
        links["next"] = _url(request, page.limit, page.offset + page.limit)
    return links


def link_header(links: dict[str, str]) -> str:
    return ", ".join(f'<{url}>; rel="{rel}"' for rel, url in links.items())


def _url(request: Request, limit: int, offset: int) -> str:
    url = request.url.include_query_params(limit=limit, offset=offset)
    return f"{url.path}?{url.query}"
