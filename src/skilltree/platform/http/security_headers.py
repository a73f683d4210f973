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


def add_security_headers(headers: MutableHeaders, scope: Scope) -> None:
    """The headers every response carries, where the response did not set them itself."""
    policy = DOCS_POLICY if scope["path"].startswith(DOCS_PATHS) else API_POLICY
    for name, value in COMMON_HEADERS.items():
        headers.setdefault(name, value)
    headers.setdefault("content-security-policy", policy)
    headers.setdefault("cache-control", DEFAULT_CACHE_CONTROL)
    if scope.get("scheme") == "https":
        headers.setdefault("strict-transport-security", HSTS)


class SecurityHeadersMiddleware(HttpMiddleware):
    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                add_security_headers(MutableHeaders(scope=message), scope)
            await send(message)

        await self.app(scope, receive, send_with_headers)
