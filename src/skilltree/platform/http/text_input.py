"""Text no database stores, refused at the door: U+0000 and lone surrogates, and JSON nested deep.

PostgreSQL cannot store U+0000 in `text`, and no UTF-8 encoder (asyncpg's, SQLite's) accepts a
lone surrogate (U+D800–U+DFFF) — JSON spells both as escapes (`\\u0000`, `\\ud800`), and a path
or a query can carry `%00`. Left alone they travel through validation and fail in the driver, as a
500. One middleware refuses them wherever they appear — path, query, JSON body (keys and values),
text body — with the 422 problem of any other invalid field, naming the field (`query.title`,
`body.topics[2].title`), before any route runs.

It also refuses a JSON body nested deeper than MAX_JSON_DEPTH before anything parses it: the
standard parser recurses once per level and fails with RecursionError (a 500) near 1,000, and no
document of this API nests more than a few dozen levels (an import's topics, 8 deep, are 17).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

from fastapi.routing import iter_route_contexts
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from skilltree.platform.http.middleware import HttpMiddleware
from skilltree.platform.http.problems import PROBLEM_TYPE_PREFIX, field_path, problem_response

MAX_JSON_DEPTH = 64
NUL = "\x00"
# A JSON escape of U+0000 or of a UTF-16 surrogate; a cheap test before any parsing. It may match
# an escaped backslash followed by "u0000" (text that is fine): the parsed body decides.
SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")
JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
# DELETE too: deleting the account takes a body (the password).
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def is_storable(text: str) -> bool:
    """Whether every database can store the text: no U+0000, no lone surrogate."""
    if NUL in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def json_depth_exceeds(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON text nests arrays and objects deeper than `limit`, found without
    parsing it (strings removed, then the brackets counted)."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False  # cannot nest deeper than it has brackets: the common case, at C speed
    depth = 0
    for byte in JSON_STRING.sub(b"", body):
        if byte in b"[{":
            depth += 1
            if depth > limit:
                return True
        elif byte in b"]}":
            depth -= 1
    return False


def unstorable_fields(value: Any, location: tuple[int | str, ...]) -> Iterator[str]:
    """The paths of every string in a parsed JSON value (keys too) that no database stores."""
    if isinstance(value, str):
        if not is_storable(value):
            yield field_path(location)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from unstorable_fields(item, (*location, index))
    elif isinstance(value, dict):
        for key, item in value.items():
            if not is_storable(key):
                yield field_path((*location, "(key)"))
            else:
                yield from unstorable_fields(item, (*location, key))


class TextInputMiddleware(HttpMiddleware):
    """422 for U+0000 or a lone surrogate anywhere in the request; 422 for deep JSON."""

    def __init__(self, app: ASGIApp) -> None:
        super().__init__(app)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        fields = [*_path_fields(scope), *_query_fields(scope)]
        if scope["method"] not in BODY_METHODS:
            await self._refuse_or_pass(fields, scope, receive, send)
            return
        media_type = _media_type(scope)
        if not (_is_json(media_type) or _is_text(media_type)):
            await self._refuse_or_pass(fields, scope, receive, send)
            return
        body, more = await _read_body(receive)
        if _is_json(media_type):
            if json_depth_exceeds(body):
                await self._refuse(
                    [("body", f"JSON nested deeper than {MAX_JSON_DEPTH} levels", "json_depth")],
                    scope,
                    receive,
                    send,
                )
                return
            fields += _json_fields(body)
        elif b"\x00" in body:
            fields.append("body")
        await self._refuse_or_pass(fields, scope, _replay(body, more, receive), send)

    async def _refuse_or_pass(
        self, fields: list[str], scope: Scope, receive: Receive, send: Send
    ) -> None:
        if not fields:
            await self.app(scope, receive, send)
            return
        message = "U+0000 and lone surrogates (U+D800 to U+DFFF) are not allowed in text"
        await self._refuse(
            [(field, message, "string_unstorable") for field in fields], scope, receive, send
        )

    async def _refuse(
        self, errors: list[tuple[str, str, str]], scope: Scope, receive: Receive, send: Send
    ) -> None:
        response = problem_response(
            422,
            title="Validation failed",
            type_=PROBLEM_TYPE_PREFIX + "validation-error",
            detail=f"The request has {len(errors)} invalid field(s).",
            instance=scope["path"],
            errors=[
                {"field": field, "message": message, "type": kind}
                for field, message, kind in errors
            ],
        )
        await response(scope, receive, send)


def _path_fields(scope: Scope) -> list[str]:
    path: str = scope["path"]
    if is_storable(path):
        return []
    # Name the parameter when a route matches; the matching runs only for such rare paths.
    for route in iter_route_contexts(scope["app"].router.routes):
        match, child = route.matches(scope)
        if match is not Match.NONE:
            params = child.get("path_params", {})
            named = [f"path.{name}" for name, v in params.items() if not is_storable(str(v))]
            if named:
                return named
    return ["path"]


def _query_fields(scope: Scope) -> list[str]:
    raw: bytes = scope.get("query_string", b"")
    if b"%00" not in raw and b"\x00" not in raw:
        return []  # percent-encoded UTF-8 decodes to no surrogate; only NUL can get through
    text = raw.decode("latin-1")
    return [
        f"query.{name}" if is_storable(name) else "query"
        for name, value in parse_qsl(text, keep_blank_values=True)
        if not (is_storable(name) and is_storable(value))
    ]


def _json_fields(body: bytes) -> list[str]:
    if b"\x00" not in body and not SUSPECT_ESCAPE.search(body):
        return []
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        return []  # not JSON: the route's own parsing says so
    return list(unstorable_fields(parsed, ("body",)))


def _media_type(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"content-type":
            media_type: str = value.decode("latin-1").split(";", 1)[0].strip().lower()
            return media_type
    return ""


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or media_type.endswith("+json")


def _is_text(media_type: str) -> bool:
    return media_type.startswith("text/") or media_type.endswith(("/yaml", "/x-yaml"))


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    """The whole body (the body-size limit, further out, bounds it); whether the client went."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks), False
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), True


def _replay(body: bytes, complete: bool, receive: Receive) -> Receive:
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            if not complete:
                return {"type": "http.disconnect"}
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
