"""HTTP routes of the accounts domain: registration, sign-in, sessions, passwords."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from fastapi.responses import RedirectResponse
from starlette.types import Scope as StarletteScope

from skilltree.accounts import api_keys, mfa, service
from skilltree.accounts.dependencies import (
    Accounts,
    CurrentSignIn,
    OwnerSignIn,
    kept_sign_in,
)
from skilltree.accounts.errors import MfaChallengeMismatch, OidcLoginFailed
from skilltree.accounts.oidc import FLOW_COOKIE, FLOW_SECONDS, OidcClient, PendingLogin
from skilltree.accounts.schemas import (
    Accepted,
    ApiKeyCreatedOut,
    ApiKeyIn,
    ApiKeyListOut,
    ApiKeyOut,
    ChangePasswordIn,
    EmailIn,
    LoginIn,
    MfaAnswerIn,
    MfaChallengeOut,
    MfaCodeIn,
    MfaEnrolmentOut,
    OidcProviderListOut,
    OidcProviderOut,
    PasswordChangedOut,
    PasswordIn,
    RecoveryCodesOut,
    RefreshIn,
    RegisterIn,
    ResetPasswordIn,
    SessionListOut,
    SessionOut,
    SignedInOut,
    TokenIn,
    TokenOut,
    UserOut,
)
from skilltree.accounts.service import Account, AccountsContext, SignedIn
from skilltree.audit import service as audit
from skilltree.audit.schemas import SecurityEventListOut, SecurityEventOut
from skilltree.platform.http import conditional
from skilltree.platform.http.bounds import RowId
from skilltree.platform.http.credentials import Credentials
from skilltree.platform.http.fast_path import PersonalRead
from skilltree.platform.http.idempotency import IDEMPOTENT
from skilltree.platform.http.problems import problem_responses
from skilltree.platform.http.versioning import API_PREFIX
from skilltree.platform.state import AppResources, DbSession, Resources

router = APIRouter(prefix=API_PREFIX, tags=["accounts"])

SIGNED_IN_ERRORS = problem_responses(401, 403)


@router.post(
    "/auth/register",
    response_model=Accepted,
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(422),
)
async def register(body: RegisterIn, db: DbSession, ctx: Accounts) -> Accepted:
    """Create an account; a verification link is e-mailed. The answer is the same whether or
    not the address was already registered."""
    await service.register(
        db, ctx, email=body.email, password=body.password, display_name=body.display_name
    )
    return Accepted(detail="Check your inbox for a link to confirm your address.")


@router.post(
    "/auth/verify-email",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(400),
)
async def verify_email(body: TokenIn, db: DbSession, ctx: Accounts) -> None:
    await service.verify_email(db, ctx, body.token)


@router.post(
    "/auth/login",
    response_model=SignedInOut | MfaChallengeOut,
    responses=problem_responses(401, 403, 422, 429),
)
async def login(
    body: LoginIn, request: Request, response: Response, db: DbSession, ctx: Accounts
) -> SignedInOut | MfaChallengeOut:
    """Sign in: sets an HttpOnly session cookie and returns the CSRF token for writes. With
    two-factor authentication on, returns a challenge to answer at /v1/auth/login/mfa."""
    outcome = await service.login(
        db, ctx, email=body.email, password=body.password, **_client(request)
    )
    if isinstance(outcome, service.MfaChallenge):
        return _challenge_out(outcome)
    _set_session_cookie(response, ctx, outcome)
    return _signed_in_out(outcome)


@router.post(
    "/auth/login/mfa", response_model=SignedInOut, responses=problem_responses(400, 401, 422, 429)
)
async def login_mfa(
    body: MfaAnswerIn, request: Request, response: Response, db: DbSession, ctx: Accounts
) -> SignedInOut:
    """Second step of sign-in: the challenge and a TOTP code (or a recovery code)."""
    outcome = await _answer(body, request, db, ctx)
    if not isinstance(outcome, SignedIn):
        raise MfaChallengeMismatch()
    _set_session_cookie(response, ctx, outcome)
    return _signed_in_out(outcome)


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT, responses=SIGNED_IN_ERRORS)
async def logout(current: OwnerSignIn, response: Response, db: DbSession, ctx: Accounts) -> None:
    """End this browser session, or this API client's token family."""
    await service.logout(db, ctx, current)
    response.delete_cookie(ctx.auth.session_cookie, path="/")


@router.post("/auth/logout-all", status_code=status.HTTP_204_NO_CONTENT, responses=SIGNED_IN_ERRORS)
async def logout_all(
    current: OwnerSignIn, response: Response, db: DbSession, ctx: Accounts
) -> None:
    """End every session and token family of this account, on every device."""
    await service.logout_everywhere(db, ctx, current.user.id)
    response.delete_cookie(ctx.auth.session_cookie, path="/")


@router.post(
    "/auth/token",
    response_model=TokenOut | MfaChallengeOut,
    responses=problem_responses(401, 403, 422, 429),
)
async def issue_tokens(
    body: LoginIn, request: Request, db: DbSession, ctx: Accounts
) -> TokenOut | MfaChallengeOut:
    """Sign an API client in: a short-lived access token and a refresh token (RFC 6749 §5.1),
    or, with two-factor authentication on, a challenge to answer at /v1/auth/token/mfa."""
    outcome = await service.issue_tokens(
        db, ctx, email=body.email, password=body.password, **_client(request)
    )
    if isinstance(outcome, service.MfaChallenge):
        return _challenge_out(outcome)
    return _token_out(outcome)


@router.post(
    "/auth/token/mfa", response_model=TokenOut, responses=problem_responses(400, 401, 422, 429)
)
async def issue_tokens_mfa(
    body: MfaAnswerIn, request: Request, db: DbSession, ctx: Accounts
) -> TokenOut:
    """Second step of an API client's sign-in: the challenge and a code."""
    outcome = await _answer(body, request, db, ctx)
    if not isinstance(outcome, service.TokenPair):
        raise MfaChallengeMismatch()
    return _token_out(outcome)


@router.post("/auth/refresh", response_model=TokenOut, responses=problem_responses(401, 422))
async def refresh(body: RefreshIn, db: DbSession, ctx: Accounts) -> TokenOut:
    """Trade a refresh token for a new pair. Each refresh token works once; presenting a spent
    one revokes every token of its family."""
    return _token_out(await service.refresh_tokens(db, ctx, body.refresh_token))


@router.post("/auth/password-reset", response_model=Accepted, status_code=status.HTTP_202_ACCEPTED)
async def request_password_reset(body: EmailIn, db: DbSession, ctx: Accounts) -> Accepted:
    """E-mail a reset link. The answer is the same whether or not the account exists."""
    await service.request_password_reset(db, ctx, body.email)
    return Accepted(detail="If an account uses this address, a reset link is on its way.")


@router.post(
    "/auth/password-reset/confirm",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(400, 422),
)
async def confirm_password_reset(body: ResetPasswordIn, db: DbSession, ctx: Accounts) -> None:
    """Set a new password with the e-mailed token; every session of the account ends."""
    await service.reset_password(db, ctx, body.token, body.password)


@router.get("/me", response_model=UserOut, responses=SIGNED_IN_ERRORS)
async def me(current: CurrentSignIn, request: Request) -> Response:
    """Who you are. Send the ETag back in If-None-Match: 304 while nothing changed."""
    return conditional.Representation.from_bytes(_me_bytes(current.account)).respond(request)


@lru_cache(maxsize=1024)
def _me_bytes(account: Account) -> bytes:
    """The representation of an account as `/v1/me` sends it, made once per account as it
    stands (an `Account` is an immutable value: a changed account is another key)."""
    out = _user_out(account)
    return conditional.Representation.of(out, cache_control=conditional.PRIVATE).to_bytes()


async def _kept_me(
    resources: Resources, _match: re.Match[str], credentials: Credentials, scope: StarletteScope
) -> bytes | None:
    """`/v1/me` in front of the application (decision 0080): the caller as this process keeps
    them needs nothing else."""
    signed_in = await kept_sign_in(resources, credentials, scope)
    return None if signed_in is None else _me_bytes(signed_in.account)


# The caller's own reads the fast path may answer (platform/http/fast_path.py).
PERSONAL_READS = (PersonalRead(f"{API_PREFIX}/me", re.compile(f"{API_PREFIX}/me"), _kept_me),)


@router.post(
    "/me/password", response_model=PasswordChangedOut, responses=problem_responses(401, 403, 422)
)
async def change_password(
    body: ChangePasswordIn,
    current: OwnerSignIn,
    request: Request,
    response: Response,
    db: DbSession,
    ctx: Accounts,
) -> PasswordChangedOut:
    """Change the password. Every other session and token family ends; a browser session is
    replaced (new cookie, new CSRF token), an API client keeps its tokens."""
    signed_in = await service.change_password(
        db,
        ctx,
        current,
        current_password=body.current_password,
        new_password=body.new_password,
        **_client(request),
    )
    if signed_in.browser_session is None:
        return PasswordChangedOut(csrf_token=None)
    _set_session_cookie(response, ctx, signed_in)
    return PasswordChangedOut(csrf_token=signed_in.browser_session.csrf_token)


@router.get("/me/sessions", response_model=SessionListOut, responses=SIGNED_IN_ERRORS)
async def list_sessions(current: OwnerSignIn, db: DbSession, ctx: Accounts) -> SessionListOut:
    """Where this account is signed in: device, address, last activity."""
    sessions = await service.list_sessions(db, ctx, current.user.id)
    return SessionListOut(
        items=[
            SessionOut(
                id=s.id,
                current=current.browser_session is not None and s.id == current.browser_session.id,
                created_at=s.created_at,
                last_seen_at=s.last_seen_at,
                expires_at=min(s.idle_expires_at, s.absolute_expires_at),
                user_agent=s.user_agent,
                ip=s.ip,
            )
            for s in sessions
        ]
    )


@router.delete(
    "/me/sessions/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404),
)
async def end_session(
    session_id: RowId, current: OwnerSignIn, db: DbSession, ctx: Accounts
) -> None:
    """Sign one of your sessions out (another device, or this one)."""
    await service.end_session(db, ctx, current.user.id, session_id)


@router.get("/me/security-events", response_model=SecurityEventListOut, responses=SIGNED_IN_ERRORS)
async def security_events(current: OwnerSignIn, db: DbSession) -> SecurityEventListOut:
    """The latest 100 security events of your account: sign-ins, failures, password changes."""
    events = await audit.events_of(db, current.user.id)
    return SecurityEventListOut(items=[SecurityEventOut.model_validate(e) for e in events])


def _client(request: Request) -> dict[str, str]:
    return {
        "user_agent": request.headers.get("user-agent", ""),
        "ip": request.client.host if request.client else "",
    }


def _set_session_cookie(response: Response, ctx: AccountsContext, signed_in: SignedIn) -> None:
    assert signed_in.secret is not None, "only a freshly opened session has its secret"
    response.set_cookie(
        ctx.auth.session_cookie,
        signed_in.secret,
        max_age=ctx.auth.session_absolute_hours * 3600,
        path="/",
        httponly=True,  # scripts (and so XSS) cannot read it
        secure=ctx.auth.cookie_secure,  # never sent over plain http
        samesite="lax",  # not sent on cross-site POSTs; the CSRF token covers the rest
    )


def _token_out(pair: service.TokenPair) -> TokenOut:
    return TokenOut(
        access_token=pair.access_token, refresh_token=pair.refresh_token, expires_in=pair.expires_in
    )


def _signed_in_out(signed_in: SignedIn) -> SignedInOut:
    assert signed_in.browser_session is not None, "only sign-in by cookie reaches here"
    return SignedInOut(
        user=_user_out(signed_in.account),
        csrf_token=signed_in.browser_session.csrf_token,
        session_expires_at=signed_in.browser_session.absolute_expires_at,
    )


def _user_out(account: Account) -> UserOut:
    return UserOut.model_validate(account, from_attributes=True)


@router.post(
    "/me/api-keys",
    response_model=ApiKeyCreatedOut,
    status_code=status.HTTP_201_CREATED,
    # The replayed response holds the key itself; stored responses are encrypted at rest.
    dependencies=[IDEMPOTENT],
    responses=problem_responses(401, 403, 422),
)
async def create_api_key(
    body: ApiKeyIn, current: OwnerSignIn, db: DbSession, ctx: Accounts
) -> ApiKeyCreatedOut:
    """Create a personal API key. The full key is in this response only: store it now."""
    key, secret = await api_keys.create_key(
        db,
        ctx.clock,
        current.user,
        name=body.name,
        scopes=body.scopes,
        expires_in_days=body.expires_in_days,
    )
    return ApiKeyCreatedOut(**_api_key_out(key).model_dump(), key=secret)


@router.get("/me/api-keys", response_model=ApiKeyListOut, responses=SIGNED_IN_ERRORS)
async def list_api_keys(current: OwnerSignIn, db: DbSession) -> ApiKeyListOut:
    """Your API keys, without their secrets."""
    return ApiKeyListOut(
        items=[_api_key_out(k) for k in await api_keys.list_keys(db, current.user.id)]
    )


@router.delete(
    "/me/api-keys/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404),
)
async def revoke_api_key(key_id: RowId, current: OwnerSignIn, db: DbSession, ctx: Accounts) -> None:
    """Revoke a key: it stops working at once."""
    await api_keys.revoke_key(db, ctx.clock, current.user.id, key_id)


def _api_key_out(key: api_keys.KeyInfo) -> ApiKeyOut:
    return ApiKeyOut.model_validate(key, from_attributes=True)


@router.post(
    "/me/mfa/totp", response_model=MfaEnrolmentOut, responses=problem_responses(401, 403, 409)
)
async def start_mfa(current: OwnerSignIn, db: DbSession, ctx: Accounts) -> MfaEnrolmentOut:
    """Start TOTP enrolment: add the secret (or the otpauth URI as a QR code) to an
    authenticator app, then confirm with a code."""
    enrolment = await mfa.start_enrolment(db, ctx.secret_box, current.user.id)
    return MfaEnrolmentOut(secret=enrolment.secret, otpauth_uri=enrolment.otpauth_uri)


@router.post(
    "/me/mfa/totp/confirm",
    response_model=RecoveryCodesOut,
    responses=problem_responses(401, 403, 409, 422),
)
async def confirm_mfa(
    body: MfaCodeIn,
    current: OwnerSignIn,
    request: Request,
    response: Response,
    db: DbSession,
    ctx: Accounts,
) -> RecoveryCodesOut:
    """Turn TOTP on with a first code; returns ten single-use recovery codes, shown once.
    Every other session and token family ends; a browser session is replaced (new cookie, new
    CSRF token)."""
    codes, signed_in = await service.enable_mfa(db, ctx, current, body.code, **_client(request))
    if signed_in.browser_session is None:
        return RecoveryCodesOut(recovery_codes=codes, csrf_token=None)
    _set_session_cookie(response, ctx, signed_in)
    return RecoveryCodesOut(recovery_codes=codes, csrf_token=signed_in.browser_session.csrf_token)


@router.post(
    "/me/mfa/totp/disable",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 422),
)
async def disable_mfa(body: PasswordIn, current: OwnerSignIn, db: DbSession, ctx: Accounts) -> None:
    """Turn TOTP off; the password is required again."""
    await mfa.disable(db, ctx.clock, current.user.id, body.password)


async def _answer(
    body: MfaAnswerIn, request: Request, db: DbSession, ctx: AccountsContext
) -> SignedIn | service.TokenPair:
    return await service.complete_mfa(
        db,
        ctx,
        challenge=body.mfa_token,
        code=body.code,
        recovery_code=body.recovery_code,
        **_client(request),
    )


def _challenge_out(challenge: service.MfaChallenge) -> MfaChallengeOut:
    return MfaChallengeOut(mfa_token=challenge.token, expires_in=challenge.expires_in)


# --- OpenID Connect -------------------------------------------------------------------------


async def oidc_client(request: Request, resources: AppResources) -> OidcClient:
    """One client per app, so discovery documents and keys are cached across requests."""
    client: OidcClient | None = getattr(request.app.state, "oidc_client", None)
    if client is None:
        client = OidcClient(resources.settings.auth.oidc_providers)
        request.app.state.oidc_client = client
    return client


Oidc = Annotated[OidcClient, Depends(oidc_client)]
ProviderName = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]{0,30}$")]


@router.get("/auth/oidc/providers", response_model=OidcProviderListOut)
async def list_oidc_providers(oidc: Oidc) -> OidcProviderListOut:
    """The OpenID Connect providers people may sign in with."""
    return OidcProviderListOut(
        items=[
            OidcProviderOut(name=name, login_url=f"{API_PREFIX}/auth/oidc/{name}/login")
            for name in oidc.names
        ]
    )


@router.get(
    "/auth/oidc/{provider}/login",
    status_code=status.HTTP_302_FOUND,
    response_class=RedirectResponse,
    responses=problem_responses(404, 502),
)
async def begin_oidc_login(
    provider: ProviderName, oidc: Oidc, ctx: Accounts, resources: AppResources
) -> RedirectResponse:
    """Start signing in with a provider: redirects the browser to it (authorization code flow
    with PKCE); the provider sends it back to the callback below."""
    chosen = oidc.provider(provider)
    url, pending = await oidc.begin(chosen, _redirect_uri(resources, provider), ctx.clock.now())
    response = RedirectResponse(url, status_code=status.HTTP_302_FOUND)
    response.set_cookie(
        FLOW_COOKIE,
        pending.seal(ctx.secret_box),
        max_age=FLOW_SECONDS,
        path=f"{API_PREFIX}/auth/oidc/",
        httponly=True,
        secure=ctx.auth.cookie_secure,
        # Lax: the provider's redirect back is a top-level GET navigation, which carries it.
        samesite="lax",
    )
    return response


@router.get(
    "/auth/oidc/{provider}/callback",
    response_model=SignedInOut | MfaChallengeOut,
    responses={
        303: {
            "description": "A browser (`Accept: text/html`) is sent on to the dashboard, "
            "signed in, or to the two-factor code page"
        },
        **problem_responses(400, 403, 404, 422, 502),
    },
)
async def finish_oidc_login(
    provider: ProviderName,
    request: Request,
    response: Response,
    db: DbSession,
    ctx: Accounts,
    oidc: Oidc,
    resources: AppResources,
    code: Annotated[str | None, Query(max_length=2048)] = None,
    state: Annotated[str, Query(max_length=512)] = "",
    error: Annotated[str | None, Query(max_length=200)] = None,
) -> SignedInOut | MfaChallengeOut | RedirectResponse:
    """Where the provider sends the browser back: checks `state`, redeems the code, validates
    the ID token and signs in (sets the session cookie, like /v1/auth/login). An account is
    linked by the provider's verified e-mail only. A browser asking for HTML is redirected
    to the dashboard (or the two-factor code page) instead of shown the JSON."""
    chosen = oidc.provider(provider)
    # Whatever happens next, this attempt is over: its cookie must not be replayed.
    response.delete_cookie(FLOW_COOKIE, path=f"{API_PREFIX}/auth/oidc/")
    if error is not None or code is None:
        raise OidcLoginFailed(f"The provider did not sign you in ({error or 'no code'}).")
    pending = PendingLogin.unseal(ctx.secret_box, request.cookies.get(FLOW_COOKIE), ctx.clock.now())
    identity = await oidc.finish(
        chosen,
        _redirect_uri(resources, provider),
        pending,
        code=code,
        state=state,
        now=ctx.clock.now(),
    )
    outcome = await service.sign_in_with_provider(db, ctx, identity, **_client(request))
    if "text/html" in request.headers.get("accept", ""):
        return _oidc_browser_redirect(ctx, outcome)
    if isinstance(outcome, service.MfaChallenge):
        return _challenge_out(outcome)
    _set_session_cookie(response, ctx, outcome)
    return _signed_in_out(outcome)


def _oidc_browser_redirect(
    ctx: AccountsContext, outcome: SignedIn | service.MfaChallenge
) -> RedirectResponse:
    """The provider's redirect is a browser's navigation: it ends on a page, not on JSON. The
    two-factor challenge travels in the fragment, which never reaches a server log."""
    if isinstance(outcome, service.MfaChallenge):
        redirect = RedirectResponse(f"/sign-in/code#challenge={outcome.token}", status_code=303)
    else:
        redirect = RedirectResponse("/", status_code=303)
        _set_session_cookie(redirect, ctx, outcome)
    redirect.delete_cookie(FLOW_COOKIE, path=f"{API_PREFIX}/auth/oidc/")
    return redirect


def _redirect_uri(resources: Resources, provider: str) -> str:
    public_url = resources.settings.mail.public_url.rstrip("/")
    return f"{public_url}{API_PREFIX}/auth/oidc/{provider}/callback"
