"""The review session: due cards one at a time, recalled, revealed, rated (keys 1-4)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import RedirectResponse, Response

from skilltree.platform.errors import UnprocessableContent
from skilltree.platform.state import AppResources, DbSession
from skilltree.reviews import service as reviews
from skilltree.roadmaps import service as roadmaps
from skilltree.web.errors import PageRoute
from skilltree.web.session import Member, SignedInForm, csrf_token, viewer_of
from skilltree.web.templating import page

router = APIRouter(route_class=PageRoute, include_in_schema=False)

RATINGS = [(rating, index + 1) for index, rating in enumerate(reviews.ReviewRating)]
# Counted on the way through the session, for its summary; never trusted for anything else.
MAX_COUNT = 10_000


@router.get("/reviews")
async def review_page(
    request: Request,
    current: Member,
    db: DbSession,
    resources: AppResources,
    done: Annotated[int, Query(ge=0, le=MAX_COUNT)] = 0,
) -> Response:
    now = resources.clock.now()
    due = await reviews.due_cards(db, current.user.id, now, None, 2)
    card = next((c for c in due.items if c.topic is not None), None)
    topic = None
    if card is not None and card.topic is not None:
        viewer = await viewer_of(db, current)
        view = await roadmaps.get_topic(db, card.topic.roadmap_slug, card.topic.slug, viewer)
        topic = view.topic
    return page(
        request,
        "reviews.html",
        {
            "current": current,
            "csrf": csrf_token(current),
            "card": card,
            "topic": topic,
            "done": done,
            "more": due.next is not None or len(due.items) > 1,
            "ratings": RATINGS,
        },
    )


@router.post("/reviews/{card_id}")
async def rate(
    card_id: Annotated[int, Path(ge=1)], form: SignedInForm, db: DbSession, resources: AppResources
) -> Response:
    try:
        rating = reviews.ReviewRating(form.get("rating"))
    except ValueError:
        raise UnprocessableContent("Rate with again, hard, good or easy.") from None
    await reviews.review(db, form.current.user.id, card_id, rating, resources.clock.now())
    before = int(form.get("done")) if form.get("done").isdigit() else 0
    done = min(before + 1, MAX_COUNT)
    return RedirectResponse(f"/reviews?done={done}", status_code=303)
