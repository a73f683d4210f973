"""A signed-in learner's roadmap and topic pages, kept rendered so that the next view is sent as
it is, from in front of the application when nothing it shows has changed (decision 0083).

A roadmap page costs about 3 ms of CPU to render (most of it filling and joining the tree's
markup, web/tree_html.py) and one statement, a topic page about 2.5 ms and three, though
between two views of one learner they rarely change. What they show, and what makes each part
stale:

    the session's CSRF token   in every form; fixed for the session's life. A page is kept per
                               session: keyed by the session's digest (as the principal cache
                               keys it), never by the token itself
    the account's name         in the header; the key names a digest of it, so a renamed
                               account is another key (a rename also marks the profile stale)
    the learner's states       the namespaces `progress.cache_namespaces` names, as
                               web/tree_states.py: every status change (any roadmap, by
                               concept), the profile, the roadmap, the concepts; a topic's
                               history is of the same status changes
    a topic's note and links   (topic page) `notes.cache_namespace`: every write of either
    the roadmap                its title, description, topics, owner and visibility: its
                               namespace, marked stale by every change of the roadmap
    who may edit it            its owner (the roadmap's namespace) or an organisation's editors:
                               a membership changes without marking anything stale, so a
                               roadmap of an organisation is never kept
    a topic's references       the installation's own source files and routes (as
                               web/code.py keeps their excerpts per process)
    `?left`, `?imported`       a query string: never kept (and the fast path never answers one)

So a page is kept only for a session (not a bearer credential: pages read the cookie alone) on
a public roadmap of no organisation, and only while the namespaces it was computed from are
current: the cache keeps a small marker, the page's ETag, under the key `page_key` or
`topic_page_key` names (`Cache.fetch` reads the namespace tokens before the page is rendered,
so a change committed meanwhile leaves the marker under a stale token; the route reads the
roadmap again inside the rendering for that reason); the page's bytes, hundreds of kB for the
built-in roadmap, stay in this process (`KeptPages`, by ETag: the same bytes are always the
same page), and never in Redis. A marker whose page this process does not hold (another
instance rendered it, or it was let go) has the page rendered again.

The fast path (platform/http/fast_path.py, decision 0080) answers `GET /roadmaps/{slug}` and
`GET /roadmaps/{slug}/topics/{topic}` with the kept page when the session is kept
(`kept_sign_in`: live, in its store, not due to slide) and the marker is a trusted local copy;
anything else goes down the stack, which renders or finds the page by the same rules.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from weakref import WeakKeyDictionary

from cachetools import LRUCache
from starlette.types import Scope as StarletteScope

from skilltree.accounts.dependencies import kept_sign_in
from skilltree.accounts.service import SignedIn
from skilltree.identity import Visibility
from skilltree.platform.cache import Cache, Computed, Key, LocalCopy
from skilltree.platform.crypto import digest
from skilltree.platform.http import conditional
from skilltree.platform.http import fast_path as front
from skilltree.platform.http.credentials import Credentials
from skilltree.platform.state import Resources
from skilltree.progress import notes
from skilltree.progress import service as progress
from skilltree.roadmaps import service as roadmaps
from skilltree.web.templating import NO_STORE, PAGE_HEADERS

# The bytes kept pages may hold per cache, once prepared: a page's representation, its body
# again in the response and its codings. The built-in roadmap's page (413 kB) holds about
# 880 kB, so some thirty-five learners' pages (least recently used out first).
MAX_BYTES = 32 * 1024 * 1024
HTML = "text/html"

# A page as rendered: its HTML body and whether it may be kept (`keepable`).
Render = Callable[[], Awaitable[tuple[bytes, bool]]]


def keepable(roadmap: roadmaps.RoadmapRef) -> bool:
    """Whether a learner's page of this roadmap may be kept: public (visible to every learner)
    and of no organisation (whose editors change with memberships, which mark nothing stale)."""
    return roadmap.visibility == Visibility.PUBLIC and roadmap.org_id is None


def page_key(slug: str, current: SignedIn) -> Key | None:
    """Where the marker of a session's page of the roadmap is kept: by everything the page
    shows of the caller (the session, the account's name) and the namespaces of everything else
    it shows. None for a caller without a browser session (pages are for sessions)."""
    return _key(slug, current, "ready-page", ())


def topic_page_key(slug: str, topic: str, current: SignedIn) -> Key | None:
    """`page_key` of a topic's page, which also shows the learner's note and links on it."""
    return _key(slug, current, f"ready-topic:{topic}", (notes.cache_namespace(current.user.id),))


def _key(slug: str, current: SignedIn, view: str, namespaces: tuple[str, ...]) -> Key | None:
    session = current.browser_session
    if session is None:
        return None
    shown = digest(f"{session.token_hash}\n{current.user.display_name}")
    user_id = current.user.id
    return Key(
        f"learner:{user_id}:{slug}:{view}:{shown}",
        (*progress.cache_namespaces(user_id, slug), *namespaces),
    )


class KeptPages:
    """Rendered pages in this process by ETag, as the fast path prepares them: the marker in the
    cache says which one is current."""

    def __init__(self, max_bytes: int = MAX_BYTES) -> None:
        self._copies: LRUCache[str, LocalCopy] = LRUCache(maxsize=max_bytes, getsizeof=_size)

    def keep(self, page: conditional.Representation) -> None:
        if page.etag not in self._copies:
            self._put(page.etag, LocalCopy(page.to_bytes(), ttl_seconds=0))

    def representation(self, etag: str) -> conditional.Representation | None:
        copy = self._copies.get(etag)
        return None if copy is None else conditional.Representation.from_bytes(copy.value)

    def prepared(self, etag: str, minimum_size: int) -> LocalCopy | None:
        """The page as the fast path answers it, its responses prepared once per page."""
        copy = self._copies.get(etag)
        if copy is not None and front.PREPARED not in copy.derived:
            copy.derived[front.PREPARED] = front.prepare(copy.value, minimum_size)
            self._put(etag, copy)  # counted again, with what it now holds
        return copy

    def _put(self, etag: str, copy: LocalCopy) -> None:
        if _size(copy) <= self._copies.maxsize:
            self._copies[etag] = copy
        else:  # larger than the whole budget
            self._copies.pop(etag, None)


def _size(copy: LocalCopy) -> int:
    """The bytes a kept page holds: its representation, and once prepared, the body of each
    response."""
    ready: front.Prepared | None = copy.derived.get(front.PREPARED)
    if ready is None:
        return len(copy.value)
    codings = sum(len(variant.body) for variant in ready.coded.values())
    return len(copy.value) + len(ready.identity.body) + codings


_by_cache: WeakKeyDictionary[Cache, KeptPages] = WeakKeyDictionary()


def kept_pages(cache: Cache) -> KeptPages:
    """The pages kept beside this cache (two apps in one process, in tests, have their own)."""
    kept = _by_cache.get(cache)
    if kept is None:
        kept = _by_cache[cache] = KeptPages()
    return kept


def representation_of(body: bytes) -> conditional.Representation:
    """A rendered page as kept: with the headers every page carries, which both paths send."""
    return conditional.Representation(
        body, conditional.entity_tag(body), NO_STORE, HTML, tuple(PAGE_HEADERS.items())
    )


async def fetch(resources: Resources, key: Key, render: Render) -> conditional.Representation:
    """The current page under `key`: kept, or rendered now (and kept when `keepable`)."""
    kept = kept_pages(resources.cache)
    rendered: conditional.Representation | None = None

    async def compute() -> Computed:
        nonlocal rendered
        body, may_keep = await render()
        rendered = representation_of(body)
        if may_keep and resources.cache.enabled:  # else no marker will ever name it
            kept.keep(rendered)
        return Computed(rendered.etag.encode(), shareable=may_keep)

    ttl = resources.settings.cache.progress_ttl_seconds
    etag = (await resources.cache.fetch(key, compute, ttl)).decode()
    if rendered is not None:
        return rendered
    found = kept.representation(etag)
    if found is not None:
        return found
    # A current marker whose page this process does not hold: rendered again, and kept if it is
    # that page (if not, something changed since, and the marker is stale already).
    body, may_keep = await render()
    page = representation_of(body)
    if may_keep and page.etag == etag:
        kept.keep(page)
    return page


async def find_roadmap_page(
    resources: Resources, match: re.Match[str], credentials: Credentials, scope: StarletteScope
) -> LocalCopy | None:
    """How the fast path finds a session's ready roadmap page (`FindPersonal`)."""
    current = await _kept_session(resources, credentials, scope)
    key = None if current is None else page_key(match["slug"], current)
    return _ready(resources, key)


async def find_topic_page(
    resources: Resources, match: re.Match[str], credentials: Credentials, scope: StarletteScope
) -> LocalCopy | None:
    """How the fast path finds a session's ready topic page (`FindPersonal`)."""
    current = await _kept_session(resources, credentials, scope)
    key = None if current is None else topic_page_key(match["slug"], match["topic"], current)
    return _ready(resources, key)


async def _kept_session(
    resources: Resources, credentials: Credentials, scope: StarletteScope
) -> SignedIn | None:
    """The caller as the principal cache keeps their session, by `kept_sign_in`'s rules (live,
    in its store, not due to slide); None for anything else, a bearer credential included:
    pages know callers by their session cookie alone."""
    if credentials.session is None:
        return None
    return await kept_sign_in(resources, credentials, scope)


def _ready(resources: Resources, key: Key | None) -> LocalCopy | None:
    """The page whose marker is a trusted local copy under `key`, prepared, if this process
    holds it; None sends the request down the stack."""
    marker = None if key is None else resources.cache.local_entry(key)
    if marker is None:
        return None
    minimum_size = resources.settings.http.compression_min_bytes
    return kept_pages(resources.cache).prepared(marker.value.decode(), minimum_size)
