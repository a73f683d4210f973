"""Conditional requests (RFC 9110 §13): strong ETags, 304 Not Modified, and optimistic locking.

A representation's ETag is a hash of its exact bytes, so it changes exactly when what the client
would see changes, and costs no extra query or version column. Reading, in a route:

    return conditional.respond(request, RoadmapOut(...), cache_control=conditional.PRIVATE)

Changing, in a route whose signature includes `precondition: RequireIfMatch`:

    precondition.check(RoadmapOut(...))   # the current representation: 412 if the client's is stale
    ... change it ...

Without If-Match the change is refused with 428 (RFC 6585 §3): a client that never read the
resource must not overwrite someone else's edit by accident (the "lost update").

A PUT that creates the resource when nothing is stored yet takes `precondition: CreateOrReplace`
and calls `precondition.check_upsert(current, stored=...)`: creating needs no precondition (there
is nothing to lose) and may say `If-None-Match: *` ("only if nothing is stored"); replacing what
is stored needs If-Match like any other update.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request
from pydantic import BaseModel
from starlette.responses import Response

from skilltree.platform.errors import DomainError
from skilltree.platform.http.compression import is_compressible

# Personal or access-controlled data: neither browsers nor proxies keep a copy (RFC 9111 §5.2.2.5).
PRIVATE = "private, no-store"
# An entity-tag: an optional weak prefix and an opaque quoted string (RFC 9110 §8.8.3).
ENTITY_TAG = re.compile(r'(W/)?("[^"]*")')


def public(max_age_seconds: int) -> str:
    """Cache-Control for data anyone may read: shared caches may keep it for max_age_seconds."""
    return f"public, max-age={max_age_seconds}"


class PreconditionRequired(DomainError):
    status = 428
    type_slug = "precondition-required"
    title = "Precondition required"


class PreconditionFailed(DomainError):
    status = 412
    type_slug = "precondition-failed"
    title = "Precondition failed"


def json_representation(model: BaseModel) -> bytes:
    """The exact bytes a JSON response carries: what the ETag is computed over."""
    return model.model_dump_json().encode()


def entity_tag(content: bytes) -> str:
    """A strong ETag: 128 bits of SHA-256 of the bytes, quoted."""
    digest = hashlib.sha256(content).digest()[:16]
    return '"' + base64.urlsafe_b64encode(digest).rstrip(b"=").decode() + '"'


def etag_of(model: BaseModel) -> str:
    return entity_tag(json_representation(model))


def _tags(header: str) -> list[tuple[bool, str]]:
    """(weak, opaque-tag) pairs of an If-Match / If-None-Match list."""
    return [(bool(match.group(1)), match.group(2)) for match in ENTITY_TAG.finditer(header)]


def none_match(header: str, etag: str) -> bool:
    """If-None-Match uses the weak comparison: W/"x" and "x" are the same (RFC 9110 §13.1.2)."""
    if header.strip() == "*":
        return True
    return any(tag == etag for _, tag in _tags(header))


def strong_match(header: str, etag: str) -> bool:
    """If-Match uses the strong comparison: a weak tag never matches (RFC 9110 §13.1.1)."""
    if header.strip() == "*":
        return True  # "*" means "any current representation", and this one exists
    return any(not weak and tag == etag for weak, tag in _tags(header))


@dataclass(frozen=True)
class Representation:
    """A response body with its ETag and Cache-Control, computed once: what the cache stores,
    so a hit answers (or 304s) without reading the database or serialising anything.
    `headers` are any others every response of it carries (a page's policy headers and its
    `Vary: Cookie`), on the 200 and the 304 alike."""

    body: bytes
    etag: str
    cache_control: str
    media_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, model: BaseModel, *, cache_control: str) -> Representation:
        body = json_representation(model)
        return cls(body, entity_tag(body), cache_control)

    def to_bytes(self) -> bytes:
        """One line of headers, then the body as it is sent."""
        head: list[object] = [self.etag, self.cache_control, self.media_type]
        if self.headers:
            head.append(dict(self.headers))
        return json.dumps(head).encode() + b"\n" + self.body

    @classmethod
    def from_bytes(cls, data: bytes) -> Representation:
        head, body = data.split(b"\n", 1)
        etag, cache_control, media_type, *headers = json.loads(head)
        others = tuple(headers[0].items()) if headers else ()
        return cls(body, etag, cache_control, media_type, others)

    def validators(self) -> dict[str, str]:
        """What every response of it carries besides its body: ETag, Cache-Control and
        `headers`."""
        return {"etag": self.etag, "cache-control": self.cache_control, **dict(self.headers)}

    def respond(
        self, request: Request, *, status_code: int = 200, headers: dict[str, str] | None = None
    ) -> Response:
        """The body with its ETag, or 304 with no body when the client's copy is current."""
        validators = {**self.validators(), **(headers or {})}
        if_none_match = request.headers.get("if-none-match")
        if request.method == "GET" and if_none_match and none_match(if_none_match, self.etag):
            return Response(status_code=304, headers=self.not_modified_headers(validators))
        return Response(self.body, status_code, headers=validators, media_type=self.media_type)

    def not_modified_headers(self, validators: dict[str, str]) -> dict[str, str]:
        """What a 304 carries of the headers its 200 would have (RFC 9110 §15.4.5): the
        validators, and the Vary the compression middleware gives a body of this type (it
        sees no type on a 304), after any the representation has, so that a cache freshening
        its copy keeps codings apart. CORS adds its own to both."""
        if not is_compressible(self.media_type):
            return validators
        vary = validators.get("vary")
        return {**validators, "vary": f"{vary}, Accept-Encoding" if vary else "Accept-Encoding"}


def respond(
    request: Request,
    model: BaseModel,
    *,
    cache_control: str,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """The model as JSON with its ETag, or 304 with no body when the client's copy is current."""
    representation = Representation.of(model, cache_control=cache_control)
    return representation.respond(request, status_code=status_code, headers=headers)


@dataclass(frozen=True)
class Precondition:
    """The If-Match (and If-None-Match) headers of an update, checked once the current
    representation is known."""

    if_match: str | None
    if_none_match: str | None = None

    def check(self, current: BaseModel) -> None:
        """Refuse the update unless the client holds the current representation."""
        if self.if_match is None:
            raise PreconditionRequired(
                "Send If-Match with the ETag you last read, so concurrent edits are not lost."
            )
        if not strong_match(self.if_match, etag_of(current)):
            raise PreconditionFailed(
                "The resource changed since you read it; GET it again and reapply your change."
            )

    def check_upsert(self, current: BaseModel, *, stored: bool) -> None:
        """Refuse a create-or-replace PUT whose preconditions fail (RFC 9110 §13.1.1-2).

        `current` is what a GET shows now (an empty representation when nothing is stored).
        """
        create_only = self.if_none_match is not None and stored
        if create_only and none_match(self.if_none_match or "", etag_of(current)):
            raise PreconditionFailed(
                "It exists already and If-None-Match asked to create it only; "
                "GET it and send If-Match to replace it."
            )
        if not stored:
            if self.if_match is not None and self.if_match.strip() == "*":
                # "*" matches only a stored representation (RFC 9110 §13.1.1).
                raise PreconditionFailed("If-Match: * needs something stored; there is nothing.")
            if self.if_match is None:
                return  # a first write loses nobody's work: no precondition is needed
        self.check(current)


async def if_match_header(
    if_match: Annotated[
        str | None,
        Header(
            description="The ETag you last read; the update is refused with 412 if it is stale "
            "and 428 without it.",
            max_length=2048,
        ),
    ] = None,
) -> Precondition:
    # Checked later, after authentication and the 404 check: an anonymous caller gets a 401, not
    # a 428, and a missing resource a 404.
    return Precondition(if_match)


RequireIfMatch = Annotated[Precondition, Depends(if_match_header)]


async def upsert_headers(
    if_match: Annotated[
        str | None,
        Header(
            description="The ETag you last read. Required to replace what is stored (412 if "
            "stale, 428 without it); optional when nothing is stored yet.",
            max_length=2048,
        ),
    ] = None,
    if_none_match: Annotated[
        str | None,
        Header(
            description="`*`: create only; 412 if something is stored already.",
            max_length=2048,
        ),
    ] = None,
) -> Precondition:
    return Precondition(if_match, if_none_match)


CreateOrReplace = Annotated[Precondition, Depends(upsert_headers)]
