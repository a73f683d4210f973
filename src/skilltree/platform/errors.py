"""Typed errors that every layer may raise and the HTTP layer renders as RFC 9457 problems.

A domain error knows its HTTP status and its problem type, so services stay free of HTTP types
while routes never have to translate exceptions by hand. The CLI renders the same errors as a
message and an exit code.
"""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    """Base of every expected failure: a client mistake or a business rule, never a bug."""

    status: ClassVar[int] = 400
    # The last segment of the problem type URI: /problems/<type_slug> (see docs/errors.md).
    type_slug: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"
    # True for failures whose writes must survive them (a revoked token family, a counted
    # failed login): the unit of work commits before the error reaches the client.
    keeps_changes: ClassVar[bool] = False

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions
        # Response headers the error implies (Retry-After on a 429, for example).
        self.headers: dict[str, str] = {}


class NotFound(DomainError):
    status = 404
    type_slug = "not-found"
    title = "Not found"


class Conflict(DomainError):
    status = 409
    type_slug = "conflict"
    title = "Conflict"


class PayloadTooLarge(DomainError):
    status = 413
    type_slug = "payload-too-large"
    title = "Payload too large"


class UnsupportedMediaType(DomainError):
    status = 415
    type_slug = "unsupported-media-type"
    title = "Unsupported media type"


class UnprocessableContent(DomainError):
    status = 422
    type_slug = "unprocessable-content"
    title = "Unprocessable content"


class ServiceOverloaded(DomainError):
    """More requests than the worker runs promptly (admission control) or than the database pool
    serves and its waiting line holds: this one is turned away, with a hint when to retry,
    instead of queueing without bound."""

    status = 503
    type_slug = "overloaded"
    title = "Service overloaded"

    def __init__(self, detail: str, *, retry_after_seconds: int = 1) -> None:
        super().__init__(detail, retry_after=retry_after_seconds)
        self.headers["Retry-After"] = str(retry_after_seconds)


class DependencyUnavailable(DomainError):
    """A service the request needs (the database, Redis) cannot be reached: a temporary outage,
    not a bug and not the client's fault, so the answer says when to retry."""

    status = 503
    type_slug = "unavailable"
    title = "Service unavailable"

    def __init__(self, detail: str, *, retry_after_seconds: int = 5) -> None:
        super().__init__(detail, retry_after=retry_after_seconds)
        self.headers["Retry-After"] = str(retry_after_seconds)
