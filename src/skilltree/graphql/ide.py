"""The GraphiQL IDE, served from the installation: no CDN, no inline script, cached for a year.

`static/` holds GraphiQL 3.9.0's browser build and the React 18.3.1 builds it runs on (MIT
licences in `static/licenses/`; the source map comment is removed, its file is not shipped),
and `ide.js`, which starts it. Like the web app's assets, each is served under a name that
carries its content hash (`/graphql/ide/graphiql.min.3f2a9c0d1b7e.js`), so it may be kept
`immutable` for a year and an upgrade changes the names. The page's policy allows scripts,
styles and fonts from this server only (GraphiQL's fonts and icons are inlined in its
stylesheet as data: URLs), and requests to this server only: the IDE can reach nothing else.

On by default outside production (`SKILLTREE_GRAPHQL_IDE`); it explores the schema through
introspection, so with introspection off it still runs documents but cannot complete them.
"""

from __future__ import annotations

import hashlib
import html
import mimetypes
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from starlette.responses import HTMLResponse, Response

STATIC_DIR = Path(__file__).parent / "static"
IMMUTABLE = "public, max-age=31536000, immutable"
# Scripts in the order the page loads them: React, then GraphiQL (which needs it), then ide.js.
SCRIPTS = ("react.production.min.js", "react-dom.production.min.js", "graphiql.min.js", "ide.js")
STYLESHEETS = ("graphiql.min.css", "ide.css")
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; font-src 'self' data:; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'none'"
)


@dataclass(frozen=True)
class Asset:
    hashed_name: str
    body: bytes
    media_type: str


@dataclass(frozen=True)
class Assets:
    by_name: dict[str, Asset]
    by_hashed_name: dict[str, Asset]


def _hashed(name: str, body: bytes) -> str:
    stem, _, suffix = name.rpartition(".")
    return f"{stem}.{hashlib.sha256(body).hexdigest()[:12]}.{suffix}"


@cache
def assets() -> Assets:
    """Every asset of the IDE, read and hashed once per process."""
    found = {}
    for name in (*SCRIPTS, *STYLESHEETS):
        body = (STATIC_DIR / name).read_bytes()
        media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        found[name] = Asset(_hashed(name, body), body, f"{media_type}; charset=utf-8")
    return Assets(found, {asset.hashed_name: asset for asset in found.values()})


def asset_response(hashed_name: str) -> Response:
    asset = assets().by_hashed_name.get(hashed_name)
    if asset is None:
        return Response(status_code=404)
    return Response(asset.body, media_type=asset.media_type, headers={"cache-control": IMMUTABLE})


def page(endpoint: str, csrf_token: str | None) -> HTMLResponse:
    """The IDE page; `csrf_token` lets a signed-in browser send mutations with its session."""
    found = assets().by_name
    prefix = f"{endpoint}/ide/"
    styles = "".join(
        f'<link rel="stylesheet" href="{prefix}{found[name].hashed_name}">' for name in STYLESHEETS
    )
    scripts = "".join(
        f'<script src="{prefix}{found[name].hashed_name}" defer></script>' for name in SCRIPTS
    )
    csrf = f'<meta name="csrf-token" content="{html.escape(csrf_token)}">' if csrf_token else ""
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        # No favicon request: an empty icon inline (img-src allows data:).
        f'<title>skilltree GraphQL</title><link rel="icon" href="data:,">{csrf}{styles}{scripts}'
        "</head>"
        f'<body><div id="graphiql" data-endpoint="{html.escape(endpoint)}">'
        "<noscript>The GraphQL IDE needs JavaScript.</noscript></div></body></html>"
    )
    # The page shows the CSRF token of the session: no shared cache may keep it.
    headers = {"content-security-policy": PAGE_POLICY, "cache-control": "private, no-store"}
    return HTMLResponse(body, headers=headers)
