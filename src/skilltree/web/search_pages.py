"""Search: the box in every page's header and the results page (`GET /v1/search`'s service).

Visitors search the public roadmaps; a signed-in learner also finds their own notes and links.
Titles and snippets come highlighted from the service, already escaped (`marked_html`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from skilltree.platform.errors import DomainError
from skilltree.platform.state import DbSession
from skilltree.search import service as search
from skilltree.web.errors import PageRoute
from skilltree.web.session import Visitor, csrf_token, viewer_of
from skilltree.web.templating import page

router = APIRouter(route_class=PageRoute, include_in_schema=False)

MAX_QUERY_LENGTH = 200  # as the API's
RESULTS_SHOWN = 30
KIND_LABELS = {"topic": "Topic", "note": "My note", "resource": "My link"}


@router.get("/search")
async def search_page(request: Request, db: DbSession, current: Visitor) -> Response:
    text = request.query_params.get("q", "").strip()[:MAX_QUERY_LENGTH]
    context: dict[str, Any] = {
        "current": current,
        "csrf": csrf_token(current),
        "q": text,
        "errors": [],
        "hits": [],
        "kinds": KIND_LABELS,
    }
    status = 200
    if text:
        viewer = await viewer_of(db, current)
        try:
            results = await search.search(
                db,
                viewer,
                search.SearchRequest(text=text, limit=RESULTS_SHOWN),
                personal=current is not None,
            )
        except DomainError as error:
            context["errors"] = [error.detail]
            status = error.status
        else:
            context |= {
                "hits": results.hits,
                "total": sum(results.counts.values()),
                "fuzzy": results.fuzzy,
            }
    return page(request, "search.html", context, status_code=status)
