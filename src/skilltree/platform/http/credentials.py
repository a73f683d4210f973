"""Who a request says it comes from, read as the application reads it: the first
`Authorization` header, else the session cookie of the first `Cookie` header (Starlette's
parser, as `request.cookies`). One reading for every layer that looks at credentials before the
application does — the fast path (fast_path.py) and the rate limiter (rate_limit.py) — so
none of them can take a request for another caller's, or for anonymous, where the application
would not."""

from __future__ import annotations

from typing import NamedTuple

from starlette.requests import cookie_parser
from starlette.types import Scope


class Credentials(NamedTuple):
    """What a request presents to say who sends it: its Authorization value, else the value of
    its session cookie (the application looks at them in that order)."""

    authorization: str | None
    session: str | None


def credentials_in(scope: Scope, session_cookie: str) -> Credentials | None:
    """The credentials a request presents, read as the application reads them: the first
    Authorization header, else the session cookie of the first Cookie header."""
    authorization = cookie = None
    for name, value in scope["headers"]:
        if name == b"authorization" and authorization is None:
            authorization = value
        elif name == b"cookie" and cookie is None:
            cookie = value
    return credentials_from(authorization, cookie, session_cookie)


def credentials_from(
    authorization: bytes | None, cookie: bytes | None, session_cookie: str
) -> Credentials | None:
    """None when the request presents neither (an empty session cookie is presented: the
    application refuses it)."""
    if authorization is not None:
        return Credentials(authorization.decode("latin-1"), None)
    session = session_from(cookie, session_cookie)
    return None if session is None else Credentials(None, session)


def session_from(cookie: bytes | None, session_cookie: str) -> str | None:
    """The session cookie's value as the application reads it (Starlette's parser, the first
    Cookie header), "" when sent empty; None when not sent."""
    if cookie is None:
        return None
    return cookie_parser(cookie.decode("latin-1")).get(session_cookie)
