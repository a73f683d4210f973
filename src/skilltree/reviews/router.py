"""HTTP routes of the reviews domain: the due queue and rating a review."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response

from skilltree.accounts.dependencies import require_scope
from skilltree.identity import Principal, Scope
from skilltree.platform.http.idempotency import IDEMPOTENT
from skilltree.platform.http.pagination import CursorParam, LimitParam, page_links
from skilltree.platform.http.problems import problem_responses
from skilltree.platform.http.versioning import API_PREFIX
from skilltree.platform.pagination import DEFAULT_PAGE_SIZE, decode_position
from skilltree.platform.state import AppResources, DbSession, resources_of
from skilltree.reviews import service
from skilltree.reviews.schemas import DueListOut, ReviewIn, ReviewOut, due_list_json

router = APIRouter(prefix=API_PREFIX, tags=["reviews"])

Reader = Annotated[Principal, Depends(require_scope(Scope.PROGRESS_READ))]
Writer = Annotated[Principal, Depends(require_scope(Scope.PROGRESS_WRITE))]


@router.get(
    "/me/reviews/due", response_model=DueListOut, responses=problem_responses(400, 401, 403)
)
async def due_reviews(
    current: Reader,
    session: DbSession,
    request: Request,
    response: Response,
    cursor: CursorParam = None,
    limit: LimitParam = DEFAULT_PAGE_SIZE,
) -> Response:
    """Cards due now, the longest-waiting first, a page at a time (follow `links.next`)."""
    # The resources and the cursor codec straight from the request: two dependencies fewer.
    resources = resources_of(request)
    cursors = resources.cursors
    scope = f"reviews-due:{current.user_id}"
    position = decode_position(cursors, scope, cursor)
    page = await service.due_cards(session, current.user_id, resources.clock.now(), position, limit)
    links = page_links(request, response, cursors, scope, page)
    response.headers["Cache-Control"] = "private, no-store"
    # The bytes FastAPI would send for DueListOut, written without a model per card; the
    # response as FastAPI builds one, with the headers set on `response` after its own.
    body = due_list_json([_due_out(item) for item in page.items], links)
    listed = Response(body, media_type="application/json")
    listed.headers.raw.extend(response.headers.raw)
    return listed


@router.post(
    "/me/reviews/{card_id}",
    response_model=ReviewOut,
    # A rating applied twice would schedule the card from a review that never happened.
    dependencies=[IDEMPOTENT],
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def review_card(
    card_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    body: ReviewIn,
    current: Writer,
    session: DbSession,
    resources: AppResources,
) -> ReviewOut:
    """Rate how well you remembered the topic; FSRS answers with the next due date.
    Send an Idempotency-Key to retry safely: a retry replays the first rating."""
    now = resources.clock.now()
    card = await service.review(session, current.user_id, card_id, body.rating, now)
    return ReviewOut(id=card.id, rating=body.rating, reviewed_at=now, due=card.due)


def _due_out(item: service.DueCard) -> dict[str, Any]:
    """A card as `DueCardOut` has it, its fields in the model's order."""
    card, label = item.card, item.topic
    links = {"review": f"{API_PREFIX}/me/reviews/{card.id}"}
    if label is not None:
        links["topic"] = f"{API_PREFIX}/roadmaps/{label.roadmap_slug}/topics/{label.slug}"
    return {
        "id": card.id,
        "due": card.due,
        "roadmap": label.roadmap_slug if label else None,
        "topic": label.slug if label else None,
        "title": label.title if label else None,
        "links": links,
    }
