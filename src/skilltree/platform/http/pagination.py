"""Cursor pagination over HTTP: the cursor and limit parameters, the codec as a dependency,
and the neighbouring pages as RFC 8288 `Link` headers (rel="next", "prev") for generic clients
and as the body's `links` for clients that ignore headers. The cursors themselves, the keyset
and the pages are `platform/pagination.py`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any

from fastapi import Depends, Query, Request, Response
from pydantic import BaseModel, SecretStr

from skilltree.platform.pagination import MAX_CURSOR_LENGTH, MAX_PAGE_SIZE, CursorCodec, Page
from skilltree.platform.state import AppResources


@lru_cache(maxsize=4)
def _codec(secret: SecretStr) -> CursorCodec:
    return CursorCodec(secret)


async def cursor_codec(resources: AppResources) -> CursorCodec:
    return _codec(resources.settings.app.secret_key)


Cursors = Annotated[CursorCodec, Depends(cursor_codec)]
CursorParam = Annotated[
    str | None,
    Query(max_length=MAX_CURSOR_LENGTH, description="Opaque: from a previous page's links"),
]
LimitParam = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Rows per page")]


class PageLinks(BaseModel):
    """The `links` member of a paged response: the same URLs as the `Link` header."""

    self: str
    next: str | None
    prev: str | None


def page_links(
    request: Request, response: Response, codec: CursorCodec, scope: str, page: Page[Any]
) -> PageLinks:
    """URLs of the neighbouring pages, set as the `Link` header and returned for the body."""
    links: dict[str, str | None] = {"self": str(request.url), "next": None, "prev": None}
    for rel, position in (("next", page.next), ("prev", page.prev)):
        if position is not None:
            links[rel] = str(request.url.include_query_params(cursor=codec.encode(scope, position)))
    header = ", ".join(
        f'<{url}>; rel="{rel}"' for rel, url in links.items() if url and rel != "self"
    )
    if header:
        response.headers["Link"] = header
    return PageLinks.model_validate(links)
