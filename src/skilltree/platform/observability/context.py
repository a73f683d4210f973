"""Request-scoped context carried by contextvars, so every log line knows its request."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class ClientInfo:
    ip: str
    user_agent: str


request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
client_var: ContextVar[ClientInfo | None] = ContextVar("client", default=None)


def current_request_id() -> str | None:
    return request_id_var.get()


def current_client() -> ClientInfo:
    """Who is on the other end of the current request (empty outside a request)."""
    return client_var.get() or ClientInfo(ip="", user_agent="")
