"""Who is asking: the user behind a bearer access token or a session cookie.

API clients send `Authorization: Bearer <access token>`; nothing attaches that header on its
own, so bearer requests need no CSRF defence. Browsers attach cookies to cross-site requests,
so a cookie alone never authorises a change.
Unsafe requests (POST, PUT, PATCH, DELETE) must also
- echo the session's CSRF token in `X-CSRF-Token` (synchronizer token; a cross-site page cannot
  read it), and
- come from an allowed origin: `Sec-Fetch-Site` same-origin (or none), and `Origin`, when sent,
  on the allow-list or equal to this server's own origin.
"""

from __future__ import annotations

import hmac
import weakref
from collections.abc import Awaitable, Callable, MutableMapping
from functools import lru_cache
from typing import Annotated, Any

from fastapi import Depends, Request
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.accounts import api_keys
from skilltree.accounts.errors import (
    CsrfRejected,
    InsufficientScope,
    NotAuthenticated,
    NotPlatformAdmin,
)
from skilltree.accounts.principal_cache import principal_cache_for, session_key
from skilltree.accounts.service import (
    AccountsContext,
    SignedIn,
    authenticate,
    authenticate_api_key,
    authenticate_token,
    kept_api_key,
    kept_session,
    kept_token,
)
from skilltree.accounts.sessions import DatabaseSessionStore, RedisSessionStore, SessionStore
from skilltree.accounts.throttle import DatabaseThrottleStore, RedisThrottleStore, ThrottleStore
from skilltree.accounts.tokens import TokenKeys
from skilltree.identity import Principal, Scope
from skilltree.platform.crypto import digest
from skilltree.platform.http.credentials import Credentials
from skilltree.platform.state import DbSession, Resources, resources_of

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "x-csrf-token"


@lru_cache(maxsize=4)
def _token_keys(current: SecretStr, previous: tuple[SecretStr, ...]) -> TokenKeys:
    # Deriving keys is start-up work: done once per configuration, not per request.
    return TokenKeys(current, list(previous))


# From the request rather than from the AppResources dependency: FastAPI resolves a
# dependency's whole subtree again for each parameter naming it, and this one is under
# every signed-in route.
async def accounts_context(request: Request) -> AccountsContext:
    return accounts_context_of(resources_of(request))


# The context of each app's resources, built once: it depends on nothing else, and building
# it (stores, keys, the cache's lookup) was a tenth of what a known caller's request cost.
_CONTEXTS: dict[int, tuple[weakref.ref[Resources], AccountsContext]] = {}


def accounts_context_of(resources: Resources) -> AccountsContext:
    kept = _CONTEXTS.get(id(resources))
    if kept is not None and kept[0]() is resources:
        return kept[1]
    context = _build_context(resources)
    _CONTEXTS[id(resources)] = (weakref.ref(resources), context)
    weakref.finalize(resources, _CONTEXTS.pop, id(resources), None)
    return context


def _build_context(resources: Resources) -> AccountsContext:
    settings = resources.settings
    sessions: SessionStore
    throttles: ThrottleStore
    if resources.redis is None:
        sessions, throttles = DatabaseSessionStore(), DatabaseThrottleStore()
    else:
        prefix = settings.redis.key_prefix
        sessions = RedisSessionStore(resources.redis, prefix, resources.clock.now)
        throttles = RedisThrottleStore(resources.redis, prefix)
    return AccountsContext(
        clock=resources.clock,
        mailer=resources.mailer,
        auth=settings.auth,
        mail=settings.mail,
        token_keys=_token_keys(settings.app.secret_key, tuple(settings.app.previous_secret_keys)),
        secret_box=resources.secret_box,
        sessions=sessions,
        throttles=throttles,
        principals=principal_cache_for(resources.broadcaster, settings.auth),
    )


Accounts = Annotated[AccountsContext, Depends(accounts_context)]


async def signed_in(request: Request, db: DbSession, ctx: Accounts) -> SignedIn:
    bearer = await bearer_sign_in(request.headers.get("authorization", ""), db, ctx)
    if bearer is not None:
        return bearer
    secret = request.cookies.get(ctx.auth.session_cookie)
    if not secret:
        raise NotAuthenticated()
    current = await authenticate(db, ctx, secret, request.scope.get("state"))
    if request.method not in SAFE_METHODS:
        check_csrf(request, current, ctx)
    return current


async def bearer_sign_in(
    authorization: str, db: AsyncSession, ctx: AccountsContext
) -> SignedIn | None:
    """The sign-in behind an `Authorization: Bearer <API key or access token>` value, or None
    when the value is no bearer credential. Also how gRPC calls are authenticated (rpc/)."""
    credentials = _bearer_credentials(authorization)
    if credentials is None:
        return None
    if api_keys.looks_like_api_key(credentials):
        return await authenticate_api_key(db, ctx, credentials)
    return await authenticate_token(db, ctx, credentials)


async def kept_sign_in(
    resources: Resources, credentials: Credentials, scope: MutableMapping[str, Any] | None
) -> SignedIn | None:
    """What `signed_in` would answer for a safe request (no CSRF check), when this process
    keeps the caller and may use them as they are (accounts/principal_cache.py): no statement,
    and for a browser session one round trip to its store. None for anything else (not kept,
    expired, due to slide, not a bearer credential): the full path then looks the caller up
    or refuses them. For answers given in front of the application (platform/http/
    fast_path.py, decision 0080). `scope` is the request's ASGI scope: a session found usable
    is noted in its state, so that the application, should the request go on to it, does not
    ask the session's store again."""
    ctx = accounts_context_of(resources)
    if credentials.authorization is not None:
        # As `signed_in`: a bearer credential is used whatever cookie comes with it.
        return _kept_bearer(ctx, credentials.authorization)
    if credentials.session is not None:
        state = None if scope is None else scope.setdefault("state", {})
        return await kept_session(ctx, credentials.session, state)
    return None


def knows_caller(resources: Resources, credentials: Credentials) -> bool:
    """Whether this process keeps the caller behind these credentials, by memory alone (a
    session's store is not asked): who may go on presenting credentials from an address whose
    refused ones used up its quota (platform/http/rate_limit.py, decision 0081)."""
    ctx = accounts_context_of(resources)
    if credentials.authorization is not None:
        return _kept_bearer(ctx, credentials.authorization) is not None
    if credentials.session:
        return ctx.principals.find(session_key(digest(credentials.session))) is not None
    return False


def _kept_bearer(ctx: AccountsContext, authorization: str) -> SignedIn | None:
    bearer = _bearer_credentials(authorization)
    if bearer is None:
        return None
    if api_keys.looks_like_api_key(bearer):
        return kept_api_key(ctx, bearer)
    return kept_token(ctx, bearer)


def _bearer_credentials(authorization: str) -> str | None:
    scheme, _, credentials = authorization.partition(" ")
    credentials = credentials.strip()
    if scheme.lower() != "bearer" or not credentials:
        return None
    return credentials


def check_csrf(
    request: Request, current: SignedIn, ctx: Accounts, token: str | None = None
) -> None:
    """The origin checks, and the session's CSRF token: from `X-CSRF-Token`, or `token` when
    the caller read it elsewhere (an HTML form's hidden field)."""
    check_origin(request, ctx)
    if token is None:
        token = request.headers.get(CSRF_HEADER, "")
    # compare_digest: the comparison takes the same time wherever the first difference is.
    assert current.browser_session is not None, "cookie requests always have a session"
    if not hmac.compare_digest(token.encode(), current.browser_session.csrf_token.encode()):
        raise CsrfRejected("Send the CSRF token from sign-in in the X-CSRF-Token header.")


def check_origin(request: Request, ctx: Accounts) -> None:
    """Refuse a request another site made the browser send: `Sec-Fetch-Site` same-origin (or
    none), and `Origin`, when sent, this server's own or on the allow-list. Also what guards
    forms used before any session exists (sign-in, sign-up) against login CSRF."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        raise CsrfRejected(f"Cross-site request refused (Sec-Fetch-Site: {fetch_site}).")
    origin = request.headers.get("origin")
    own_origin = f"{request.url.scheme}://{request.url.netloc}"
    if origin is not None and origin != own_origin and origin not in ctx.auth.allowed_origins:
        raise CsrfRejected(f"Requests from {origin} are not allowed.")


# Inside accounts: the sign-in with its rows (the session to end, the user to change).
CurrentSignIn = Annotated[SignedIn, Depends(signed_in)]


async def owner_sign_in(current: CurrentSignIn) -> SignedIn:
    """Managing the account itself (keys, password, sessions) needs a real sign-in: an API
    key that could mint keys or change the password would turn any leak into a takeover."""
    if current.api_key is not None:
        raise InsufficientScope("API keys cannot manage the account; sign in instead.")
    return current


OwnerSignIn = Annotated[SignedIn, Depends(owner_sign_in)]


async def admin_sign_in(current: CurrentSignIn) -> SignedIn:
    """The operator's administrators: a user flagged `is_admin` (by `skilltree user create
    --admin` or another administrator). An API key of such a user acts as one only with the
    `admin` scope, so a key minted for progress sync cannot administer the platform."""
    if not current.user.is_admin:
        raise NotPlatformAdmin()
    if not current.principal.has_scope(Scope.ADMIN):
        raise InsufficientScope("This API key lacks the 'admin' scope.", scope=Scope.ADMIN)
    return current


AdminSignIn = Annotated[SignedIn, Depends(admin_sign_in)]


# For every other domain: the caller as a `Principal`, never an ORM row.
async def current_principal(current: CurrentSignIn) -> Principal:
    return current.principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


async def maybe_principal(request: Request, db: DbSession, ctx: Accounts) -> Principal | None:
    """The caller if they sent credentials, None for an anonymous visitor. Credentials that
    are present but wrong are still a 401: a bad token never silently becomes "anonymous"."""
    if "authorization" not in request.headers and ctx.auth.session_cookie not in request.cookies:
        return None
    return (await signed_in(request, db, ctx)).principal


MaybePrincipal = Annotated[Principal | None, Depends(maybe_principal)]


async def account_owner(current: OwnerSignIn) -> Principal:
    return current.principal


AccountOwner = Annotated[Principal, Depends(account_owner)]


def require_scope(scope: Scope) -> Callable[[SignedIn], Awaitable[Principal]]:
    """A dependency admitting signed-in callers whose credential allows `scope`."""

    # The sign-in itself rather than CurrentPrincipal: one dependency fewer on every read.
    async def check(signed: CurrentSignIn) -> Principal:
        current = signed.principal
        if not current.has_scope(scope):
            raise InsufficientScope(f"This API key lacks the {scope.value!r} scope.", scope=scope)
        return current

    return check


async def platform_admin(current: AdminSignIn) -> Principal:
    return current.principal


PlatformAdmin = Annotated[Principal, Depends(platform_admin)]


async def idempotency_caller(request: Request, db: AsyncSession) -> str:
    """Whom an Idempotency-Key belongs to: the credential, not the user
    (platform.http.idempotency), so no credential is ever shown another's response.

    Runs before the route, with the same checks as `signed_in`, so a key is never claimed for
    a caller the route would refuse.
    """
    current = await signed_in(request, db, accounts_context_of(resources_of(request)))
    if current.api_key is not None:
        return f"api-key:{current.api_key.id}"
    if current.token_family is not None:
        return f"token:{current.token_family}"
    assert current.browser_session is not None, "a sign-in is a key, a token or a session"
    return f"session:{current.browser_session.id}"
