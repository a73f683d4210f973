"""Jinja2 for pages: one environment per process, HTML responses with the page's policy.

Pages get their own Content-Security-Policy, stricter in one way than any inline-script site:
scripts and styles come from this origin's hashed assets only (no inline script, no inline
style, no eval), forms post only here, and nothing may frame the page.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse

from skilltree.web.assets import manifest

if TYPE_CHECKING:
    from jinja2 import Environment

PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# Chrome sends `Origin: null` on a form post from a page with `no-referrer` (the API's
# policy), which the CSRF origin check must refuse; same-origin still tells other sites nothing.
REFERRER_POLICY = "same-origin"
# Pages show personal data and carry the CSRF token: never stored by any cache.
NO_STORE = "no-store"
# What every page's response says besides its body and Cache-Control (a page read answered in
# front of the application sends the same: web/ready_pages.py).
PAGE_HEADERS = {
    "content-security-policy": PAGE_POLICY,
    "referrer-policy": REFERRER_POLICY,
    # The same address shows each visitor their own page.
    "vary": "Cookie",
}
# Where `page` splices bytes into a rendered page. A comment can come only from a template's
# own text, never from an escaped value (which has no "<"); the random part keeps it from
# matching any template's text.
_SPLICE = f"<!--{secrets.token_hex(16)}-->"


@cache
def environment() -> Environment:
    """Built with the first page (Jinja2 stays out of workers that serve only the API)."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(
        loader=PackageLoader("skilltree.web", "templates"),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
        # Templates are the package's files, which do not change under a running process:
        # without this, every page asks the file system whether its templates changed.
        auto_reload=False,
    )
    env.globals["asset"] = manifest().url
    env.filters["percent"] = lambda value: f"{value:.0f}"
    return env


def page(
    request: Request,
    template: str,
    context: Mapping[str, Any],
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
    spliced: tuple[str, bytes] | None = None,
) -> HTMLResponse:
    """The template rendered as an HTML response. With `spliced` (a variable's name and its
    markup as UTF-8), the template shows that variable as if it held the markup, and the
    bytes go into the body without being decoded and encoded again (the roadmap's tree)."""
    if spliced is None:
        body: str | bytes = environment().get_template(template).render(request=request, **context)
    else:
        name, markup = spliced
        context = {**context, name: Markup(_SPLICE)}  # noqa: S704  (a constant comment)
        rendered = environment().get_template(template).render(request=request, **context)
        before, found, after = rendered.partition(_SPLICE)
        if not found or _SPLICE in after:
            raise ValueError(f"{template} must show {name} exactly once")
        body = b"".join((before.encode(), markup, after.encode()))
    response = HTMLResponse(body, status_code=status_code, headers=dict(headers or {}))
    for name, value in PAGE_HEADERS.items():
        response.headers[name] = value
    response.headers.setdefault("cache-control", NO_STORE)
    return response
