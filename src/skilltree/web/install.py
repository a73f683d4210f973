"""Mount the web app on the API's application: its pages, its assets, its error pages."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from starlette.responses import Response

from skilltree.platform.errors import NotFound
from skilltree.web.account_pages import router as account_pages_router
from skilltree.web.account_router import router as account_router
from skilltree.web.account_settings import router as account_settings_router
from skilltree.web.assets import IMMUTABLE, manifest
from skilltree.web.cohort_pages import router as cohort_pages_router
from skilltree.web.editing_pages import router as editing_pages_router
from skilltree.web.errors import install_html_errors
from skilltree.web.orgs_router import router as orgs_router
from skilltree.web.reviews_router import router as reviews_router
from skilltree.web.room_pages import router as room_pages_router
from skilltree.web.router import router as pages_router
from skilltree.web.search_pages import router as search_router

assets_router = APIRouter(include_in_schema=False)


class AssetNotFound(NotFound):
    type_slug = "not-found"
    title = "Not found"


@assets_router.get("/assets/{name}")
async def asset(name: str) -> Response:
    """A hashed asset: the name changes with the bytes, so it may be cached for a year."""
    found = manifest().by_hashed_name.get(name)
    if found is None:
        raise AssetNotFound(f"There is no asset {name!r}.")
    return Response(found.body, media_type=found.media_type, headers={"cache-control": IMMUTABLE})


def install_web(app: FastAPI) -> None:
    """Add the pages (after install_problem_handlers, whose handlers the error pages wrap)."""
    install_html_errors(app)
    app.include_router(assets_router)
    app.include_router(account_router)
    app.include_router(pages_router)
    app.include_router(reviews_router)
    app.include_router(account_pages_router)
    app.include_router(orgs_router)
    app.include_router(editing_pages_router)
    app.include_router(account_settings_router)
    app.include_router(search_router)
    app.include_router(cohort_pages_router)
    app.include_router(room_pages_router)
