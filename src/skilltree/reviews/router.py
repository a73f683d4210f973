"""HTTP routes of the reviews domain: the due queue and rating a review.

The due queue's first page (the default limit, no cursor) is kept in the cache per learner, as
a learner's progress views are (decision 0082): filled by the route, it answers with no statement
while it is the page the route would make. It is that page only until the learner's next card
not on it comes due, so it is kept with that instant (`KeptPage.until`) and refused past it by
the application's clock. A rating, a card started or retired (any change of progress), an
erased account and any change of a roadmap its cards are on mark it stale through the cache's
namespaces. The roadmaps are found by a small entry of their own (`card_roadmaps_key`); a page
with a card on a roadmap that can go without its namespace going stale (an organisation's, or
another's private one: `service.Tenure`) is made on every request, as before.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Annotated, Any

import orjson
from cachetools import LRUCache
from fastapi import APIRouter, Depends, Path, Request, Response
from starlette.datastructures import URL
from starlette.types import Scope as StarletteScope

from skilltree.accounts.dependencies import kept_sign_in, require_scope
from skilltree.identity import Principal, Scope
from skilltree.platform.cache import Cache, Computed, Key, LocalCopy
from skilltree.platform.clock import EPOCH
from skilltree.platform.http import conditional
from skilltree.platform.http.credentials import Credentials
from skilltree.platform.http.fast_path import PersonalRead
from skilltree.platform.http.idempotency import IDEMPOTENT
from skilltree.platform.http.pagination import CursorParam, LimitParam, page_links
from skilltree.platform.http.problems import problem_responses
from skilltree.platform.http.versioning import API_PREFIX
from skilltree.platform.pagination import DEFAULT_PAGE_SIZE, decode_position
from skilltree.platform.state import AppResources, DbSession, Resources, resources_of
from skilltree.profiles import service as profiles
from skilltree.reviews import service
from skilltree.reviews.schemas import DueListOut, ReviewIn, ReviewOut, due_list_json
from skilltree.roadmaps import service as roadmaps

router = APIRouter(prefix=API_PREFIX, tags=["reviews"])

Reader = Annotated[Principal, Depends(require_scope(Scope.PROGRESS_READ))]
Writer = Annotated[Principal, Depends(require_scope(Scope.PROGRESS_WRITE))]

PRIVATE = conditional.PRIVATE
# What a kept page remembers of the representations made from it, by the request's URL (its
# `self` link), at most this many.
MADE_FOR_URLS = 8


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
    """Cards due now, the longest-waiting first, a page at a time (follow `links.next`).
    The first page carries an ETag: send it back in If-None-Match, 304 while nothing changed."""
    # The resources and the cursor codec straight from the request: two dependencies fewer.
    resources = resources_of(request)
    cursors = resources.cursors
    scope = due_scope(current.user_id)
    position = decode_position(cursors, scope, cursor)
    now = resources.clock.now()
    if position is None and limit == DEFAULT_PAGE_SIZE:
        kept = await _first_page(session, resources, current.user_id, now)
        return kept.respond(request)
    page = await service.due_cards(session, current.user_id, now, position, limit)
    links = page_links(request, response, cursors, scope, page)
    response.headers["Cache-Control"] = PRIVATE
    # The bytes FastAPI would send for DueListOut, written without a model per card; the
    # response as FastAPI builds one, with the headers set on `response` after its own.
    body = due_list_json([_due_out(item) for item in page.items], links)
    listed = Response(body, media_type="application/json")
    listed.headers.raw.extend(response.headers.raw)
    return listed


def due_scope(user_id: int) -> str:
    """What the due list's cursors are signed for: this learner's queue, no one else's."""
    return f"reviews-due:{user_id}"


@dataclass
class Answer:
    """The response to a request of one URL: the representation (with its `Link` header), and
    the same as the fast path's local copy (made when it first asks)."""

    representation: conditional.Representation
    copy: LocalCopy | None = None

    def local_copy(self, ttl_seconds: int) -> LocalCopy:
        if self.copy is None:
            self.copy = LocalCopy(self.representation.to_bytes(), ttl_seconds)
        return self.copy


@dataclass(frozen=True)
class KeptPage:
    """The due list's first page as the cache keeps it: its cards as JSON, the cursor of the
    page after it, and the instants (microseconds since the epoch, by the application's
    clock) from which and until which it is the page the route would make: made at `made`, it
    holds every active card due then; a card joins it, or gives it a `next`, only when one not
    due then comes due, at `until` at the earliest. Its links name the request's URL, so they
    are made per request (`answer`)."""

    made: int
    until: int
    next_cursor: str | None
    items: bytes
    # By URL, the answers made from it (at most MADE_FOR_URLS).
    answers: dict[str, Answer] = field(default_factory=dict, compare=False, repr=False)

    def to_bytes(self) -> bytes:
        return orjson.dumps([self.made, self.until, self.next_cursor]) + b"\n" + self.items

    @classmethod
    def read(cls, value: bytes) -> KeptPage:
        """The page kept as `value`, read once while the cache hands out those bytes."""
        page = _READ_PAGES.get(value)
        if page is None:
            head, items = value.split(b"\n", 1)
            made, until, next_cursor = orjson.loads(head)
            page = _READ_PAGES[value] = cls(made, until, next_cursor, items)
        return page

    def valid_at(self, now: datetime) -> bool:
        return self.made <= micros(now) < self.until

    def answer(self, url: str) -> Answer:
        """The response to a request of `url` (the `self` link): the bytes `due_list_json`
        writes for the page, with their ETag, and the Link header `page_links` sets."""
        answer = self.answers.get(url)
        if answer is not None:
            return answer
        next_url = None
        headers: tuple[tuple[str, str], ...] = ()
        if self.next_cursor is not None:
            next_url = _with_cursor(url, self.next_cursor)
            headers = (("link", f'<{next_url}>; rel="next"'),)
        links = orjson.dumps({"self": url, "next": next_url, "prev": None})
        body = b'{"items":' + self.items + b',"links":' + links + b"}"
        representation = conditional.Representation(
            body, conditional.entity_tag(body), PRIVATE, headers=headers
        )
        if len(self.answers) >= MADE_FOR_URLS:
            self.answers.clear()
        answer = self.answers[url] = Answer(representation)
        return answer

    def respond(self, request: Request) -> Response:
        return self.answer(str(request.url)).representation.respond(request)


# Kept pages by the bytes the cache keeps them as: the cache hands the same bytes object back
# while the entry lives (Python keeps its hash), so a page is read, and its answers made, once.
_READ_PAGES: LRUCache[bytes, KeptPage] = LRUCache(maxsize=512)


def micros(instant: datetime) -> int:
    """An instant as whole microseconds since the epoch: compared exactly, unlike a float."""
    return (instant - EPOCH) // timedelta(microseconds=1)


def _with_cursor(url: str, cursor: str) -> str:
    """`url` with the cursor added to its query, as `page_links` makes a `next` link."""
    return str(URL(url).include_query_params(cursor=cursor))


@lru_cache(maxsize=4096)
def card_roadmaps_key(user_id: int) -> Key:
    """Where the roadmaps of a learner's active cards are cached: stale when a card is started
    or retired (a change of progress) or the account goes."""
    return Key(
        f"reviews:{user_id}:roadmaps",
        (service.cards_namespace(user_id), profiles.cache_namespace(user_id)),
    )


@lru_cache(maxsize=4096)
def first_page_key(user_id: int, roadmap_slugs: tuple[str, ...]) -> Key:
    """Where a learner's first page of the due list is cached: stale when their queue changes
    (a rating, a card started or retired), their account goes (its id may be handed out
    again), or one of the roadmaps their cards are on changes (a topic renamed or removed)."""
    namespaces = (
        service.queue_namespace(user_id),
        profiles.cache_namespace(user_id),
        *(roadmaps.cache_namespace(slug) for slug in roadmap_slugs),
    )
    return Key(f"reviews:{user_id}:due:{','.join(roadmap_slugs)}", namespaces)


def tenure_key(slug: str) -> Key:
    """Where how a roadmap is held is cached, for every learner: stale with any change of it."""
    return Key(f"reviews:roadmap:{slug}:tenure", (roadmaps.cache_namespace(slug),))


async def kept_due_list(
    resources: Resources,
    credentials: Credentials,
    url: str,
    scope: StarletteScope | None = None,
) -> LocalCopy | None:
    """The due list's first page for a request of `url` (no query), from what this process
    keeps, with no statement and no round trip (but a kept browser session's store's), or None
    (the route answers): the caller as the application keeps them (`kept_sign_in`), allowed
    to read progress; the roadmaps of their cards and the page as trusted local copies; the
    page valid now by the application's clock. `url` is the request's, which the page's `self`
    and `next` links name (decision 0082). `scope` is the request's, as `kept_sign_in` takes it."""
    signed_in = await kept_sign_in(resources, credentials, scope)
    if signed_in is None or not signed_in.principal.has_scope(Scope.PROGRESS_READ):
        return None
    user_id = signed_in.account.id
    cache = resources.cache
    found = cache.local_entry(card_roadmaps_key(user_id))
    if found is None:
        return None
    copy = cache.local_entry(first_page_key(user_id, read_slugs(found.value)))
    if copy is None:
        return None
    kept = KeptPage.read(copy.value)
    if not kept.valid_at(resources.clock.now()):
        return None
    return kept.answer(url).local_copy(copy.ttl_seconds)


async def _kept_due_list_of(
    resources: Resources, _match: re.Match[str], credentials: Credentials, scope: StarletteScope
) -> LocalCopy | None:
    """`kept_due_list` for the fast path, the request's URL from its scope as `request.url`
    makes it: the page's `self` link names it (its scheme and Host)."""
    return await kept_due_list(resources, credentials, _request_url(scope), scope)


# The caller's own reads the fast path may answer (platform/http/fast_path.py).
PERSONAL_READS = (
    PersonalRead(
        f"{API_PREFIX}/me/reviews/due",
        re.compile(f"{API_PREFIX}/me/reviews/due"),
        _kept_due_list_of,
    ),
)


# Request URLs by what they are made of: building one costs about 6 µs.
_URLS: LRUCache[tuple[Any, ...], str] = LRUCache(maxsize=256)


def _request_url(scope: StarletteScope) -> str:
    """`str(request.url)` of a request without a query, made once for its scheme, host, root
    path and path (and the server's address, which it names when there is no Host header)."""
    host = next((value for name, value in scope["headers"] if name == b"host"), None)
    made_of = (scope["scheme"], host, scope.get("server"), scope.get("root_path"), scope["path"])
    url = _URLS.get(made_of)
    if url is None:
        url = _URLS[made_of] = str(URL(scope=scope))
    return url


async def _first_page(
    session: DbSession, resources: Resources, user_id: int, now: datetime
) -> KeptPage:
    """The first page from the cache while it is the one the route would make now, else made
    again (and kept, when its cards allow)."""
    cache = resources.cache
    ttl = resources.settings.cache.progress_ttl_seconds
    roadmap_slugs = await _card_roadmaps(cache, session, user_id, ttl)
    made: list[KeptPage] = []

    async def make() -> Computed:
        page, keep = await _make_first_page(
            session, resources, user_id, now, set(roadmap_slugs), ttl
        )
        made.append(page)
        return Computed(page.to_bytes(), shareable=keep)

    key = first_page_key(user_id, roadmap_slugs)
    for attempt in range(2):
        value = await cache.fetch(key, make, ttl)
        if made:  # made by this request, for now
            return made[-1]
        kept = KeptPage.read(value)
        if kept.valid_at(now):
            return kept
        if micros(now) < kept.made or attempt == 1:
            break  # made after this request's now, by a request begun later: not ours to drop
        # A card came due since it was made: the queue's namespace goes stale, and the next
        # fetch makes the page again.
        await cache.invalidate([service.queue_namespace(user_id)])
    await make()  # for this request alone
    return made[-1]


async def _card_roadmaps(
    cache: Cache, session: DbSession, user_id: int, ttl: int
) -> tuple[str, ...]:
    async def find() -> Computed:
        return Computed(orjson.dumps(await service.card_roadmaps(session, user_id)))

    return read_slugs(await cache.fetch(card_roadmaps_key(user_id), find, ttl))


@lru_cache(maxsize=1024)
def read_slugs(value: bytes) -> tuple[str, ...]:
    """The roadmaps' slugs kept as `value` (`card_roadmaps_key`), read once per value."""
    return tuple(orjson.loads(value))


async def _make_first_page(
    session: DbSession,
    resources: Resources,
    user_id: int,
    now: datetime,
    roadmap_slugs: set[str],
    ttl: int,
) -> tuple[KeptPage, bool]:
    """The first page made now, and whether it may be kept: only when every card read to make
    it is on a roadmap its key names (found before, so a card on another means something
    changed since: the next request finds them again) and that lasts for the learner."""
    first = await service.first_due_page(session, user_id, now, DEFAULT_PAGE_SIZE)
    page = first.page
    next_cursor = None
    if page.next is not None:
        next_cursor = resources.cursors.encode(due_scope(user_id), page.next)
    items = orjson.dumps([_due_out(item) for item in page.items], option=orjson.OPT_UTC_Z)
    keep = first.roadmaps <= roadmap_slugs and await _all_last(
        resources.cache, session, user_id, roadmap_slugs & first.roadmaps, ttl
    )
    until = now + timedelta(seconds=ttl)
    if keep:
        coming = await service.next_due(session, user_id, now)
        if coming is not None:
            until = min(until, coming)
    return KeptPage(micros(now), micros(until), next_cursor, items), keep


async def _all_last(
    cache: Cache, session: DbSession, user_id: int, slugs: set[str], ttl: int
) -> bool:
    """Whether the learner's cards on each of these roadmaps go only with a change that marks
    a namespace of the page's key stale (`service.Tenure.lasts_for`)."""
    for slug in sorted(slugs):

        async def find(slug: str = slug) -> Computed:
            held = await service.tenure(session, slug)
            return Computed(orjson.dumps(None if held is None else dataclasses.astuple(held)))

        held = orjson.loads(await cache.fetch(tenure_key(slug), find, ttl))
        if held is None or not service.Tenure(*held).lasts_for(user_id):
            return False
    return True


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
