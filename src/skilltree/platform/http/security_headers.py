"""Security headers on every response: the browser's own defences, switched on.

The API serves JSON, so its policy forbids everything a page could do; only the interactive
documentation (/docs, /redoc) may load its scripts and styles. Every response without a
Cache-Control of its own is `private, no-store`. The middleware sits outside the body limit, the
rate limiter and CORS, so their refusals (413, 429) carry the headers too.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import Message, Receive, Scope, Send

from skilltree.platform.http.middleware import HttpMiddleware

# JSON never needs to run code, load anything, or be framed (clickjacking).
API_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# Swagger UI and ReDoc load their assets from this server (api_docs.py) and run a small inline
# bootstrap script; ReDoc renders in a web worker and inlines its images.
DOCS_POLICY = (
    "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; worker-src blob:; frame-ancestors 'none'; "
    "base-uri 'none'"
)
DOCS_PATHS = ("/docs", "/redoc")
COMMON_HEADERS = {
    "x-content-type-options": "nosniff",  # no MIME sniffing: JSON stays JSON
    "x-frame-options": "DENY",  # frame-ancestors for browsers that predate CSP 2
    "referrer-policy": "no-referrer",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=()",
    "cross-origin-opener-policy": "same-origin",
}
# What a response that says nothing else about caching gets: most answers are personal (a
# profile, tokens, a new key's secret) and no shared cache or browser disk may keep them. Routes
# whose answers anyone may keep say so themselves (public roadmaps: `public, max-age=…`).
DEFAULT_CACHE_CONTROL = "private, no-store"
# Two years, subdomains included: only ever sent over https (RFC 6797 §7.2).
HSTS = "max-age=63072000; includeSubDomains"


RawHeader = tuple[bytes, bytes]


def _raw(name: str, value: str) -> RawHeader:
    return (name.encode("latin-1"), value.encode("latin-1"))


# The headers as raw pairs, in the order they are added, encoded once rather than per response.
_COMMON_RAW = tuple(_raw(name, value) for name, value in COMMON_HEADERS.items())
_API_POLICY_RAW = _raw("content-security-policy", API_POLICY)
_DOCS_POLICY_RAW = _raw("content-security-policy", DOCS_POLICY)
_CACHE_CONTROL_RAW = _raw("cache-control", DEFAULT_CACHE_CONTROL)
_HSTS_RAW = _raw("strict-transport-security", HSTS)


def add_security_headers(headers: MutableHeaders, scope: Scope) -> None:
    """The headers every response carries, where the response did not set them itself."""
    add_raw_security_headers(headers.raw, scope)


def add_raw_security_headers(raw: list[RawHeader], scope: Scope) -> None:
    """`add_security_headers` on a response's raw header list: each header the response does
    not name itself is appended, in the same order and by the same exact-name comparison as
    `MutableHeaders.setdefault`, with one scan of the response's headers instead of one each."""
    named = {name for name, _ in raw}
    policy = _DOCS_POLICY_RAW if scope["path"].startswith(DOCS_PATHS) else _API_POLICY_RAW
    for header in (*_COMMON_RAW, policy, _CACHE_CONTROL_RAW):
        if header[0] not in named:
            raw.append(header)
    if scope.get("scheme") == "https" and _HSTS_RAW[0] not in named:
        raw.append(_HSTS_RAW)


class SecurityHeadersMiddleware(HttpMiddleware):
    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                raw = message["headers"] = list(message.get("headers", ()))
                add_raw_security_headers(raw, scope)
            await send(message)

        await self.app(scope, receive, send_with_headers)
