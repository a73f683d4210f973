"""Cursor pagination: opaque, tamper-proof cursors over a keyset (sort key, id).

Keyset pagination asks "the rows after (key, id)" instead of "skip N rows": every page costs
one index range scan however deep the client goes, and rows inserted or deleted meanwhile never
shift a row onto two pages or off all of them. The id breaks ties between equal sort keys, so
the order is total.

A cursor is `<payload>.<signature>`: the base64url JSON of where the page ends, and an
HMAC-SHA256 over it with a key derived from SKILLTREE_SECRET_KEY. Clients treat it as opaque;
one that was edited, truncated, or minted for another list (the signature covers a scope such as
"reviews-due:42") is a 400 problem, never a query with attacker-chosen values. Rotating the
secret key invalidates outstanding cursors, which costs a client one restart from page one.

This module is the framework-free core (services and repositories use it);
`platform/http/pagination.py` turns pages into `Link` headers and body links.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

import orjson
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import SecretStr
from sqlalchemy import ColumnElement, Select, and_, or_
from sqlalchemy.orm import QueryableAttribute

from skilltree.platform.errors import DomainError

Direction = Literal["next", "prev"]
KeyValue = datetime | int | str
T = TypeVar("T")
C = TypeVar("C")
# Any select: of one entity, or of several columns read as tuples.
Q = TypeVar("Q", bound=Select[*tuple[Any, ...]])
# A mapped attribute (Event.occurred_at) or any column expression.
Column = ColumnElement[C] | QueryableAttribute[C]

MAX_CURSOR_LENGTH = 512
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


class InvalidCursor(DomainError):
    status = 400
    type_slug = "invalid-cursor"
    title = "Invalid cursor"

    def __init__(self) -> None:
        super().__init__(
            "The cursor is not one this list handed out; start again without one.",
            parameter="cursor",
        )


@dataclass(frozen=True)
class Position:
    """Where a page starts: strictly after (next) or strictly before (prev) the row (key, id)."""

    direction: Direction
    key: KeyValue
    id: int


class CursorCodec:
    def __init__(self, secret: SecretStr) -> None:
        self._key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"skilltree cursors v1"
        ).derive(secret.get_secret_value().encode())

    def encode(self, scope: str, position: Position) -> str:
        payload = _b64encode(
            orjson.dumps({"d": position.direction, "k": _dump_key(position.key), "i": position.id})
        )
        return f"{payload}.{self._sign(scope, payload)}"

    def decode(self, scope: str, cursor: str) -> Position:
        payload, _, signature = cursor.partition(".")
        # compare_digest: how much of a forged signature matched must not show in the timing.
        # As bytes: it refuses a str beyond ASCII, which a client's cursor may be.
        expected = self._sign(scope, payload).encode()
        if not payload or not hmac.compare_digest(signature.encode(), expected):
            raise InvalidCursor()
        try:
            data = orjson.loads(_b64decode(payload))
            direction, key, row_id = data["d"], _load_key(data["k"]), data["i"]
        except (binascii.Error, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            raise InvalidCursor() from error
        if direction not in ("next", "prev") or not isinstance(row_id, int):
            raise InvalidCursor()
        return Position(direction, key, row_id)

    def _sign(self, scope: str, payload: str) -> str:
        mac = hmac.new(self._key, f"{scope}\n{payload}".encode(), hashlib.sha256)
        return _b64encode(mac.digest())


@dataclass(frozen=True)
class Keyset:
    """The total order of a list: a sort column, then the id; ascending or descending."""

    sort_column: Column[Any]
    id_column: Column[int]
    descending: bool = False

    def order_by(self, *, reverse: bool) -> list[ColumnElement[Any]]:
        backwards = self.descending != reverse
        if backwards:
            return [self.sort_column.desc(), self.id_column.desc()]
        return [self.sort_column.asc(), self.id_column.asc()]

    def beyond(self, position: Position) -> ColumnElement[bool]:
        """Rows strictly past `position` in the direction it points."""
        forwards = (position.direction == "next") != self.descending
        if forwards:
            return or_(
                self.sort_column > position.key,
                and_(self.sort_column == position.key, self.id_column > position.id),
            )
        return or_(
            self.sort_column < position.key,
            and_(self.sort_column == position.key, self.id_column < position.id),
        )


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next: Position | None
    prev: Position | None


def page_query(query: Q, keyset: Keyset, position: Position | None, limit: int) -> Q:
    """`query` narrowed to one page, plus one row to tell whether another page follows."""
    if position is not None:
        query = query.where(keyset.beyond(position))
    reverse = position is not None and position.direction == "prev"
    return query.order_by(*keyset.order_by(reverse=reverse)).limit(limit + 1)


def make_page(
    rows: Sequence[T],
    position: Position | None,
    limit: int,
    key_of: Callable[[T], tuple[KeyValue, int]],
) -> Page[T]:
    """Turn the rows of `page_query` into a page and the positions of its neighbours."""
    more = len(rows) > limit
    items = list(rows[:limit])
    backwards = position is not None and position.direction == "prev"
    if backwards:
        items.reverse()
    has_next = more if not backwards else True
    has_prev = more if backwards else position is not None
    if not items:
        return Page(items, None, None)
    return Page(
        items,
        Position("next", *key_of(items[-1])) if has_next else None,
        Position("prev", *key_of(items[0])) if has_prev else None,
    )


def decode_position(codec: CursorCodec, scope: str, cursor: str | None) -> Position | None:
    return None if cursor is None else codec.decode(scope, cursor)


def _dump_key(key: KeyValue) -> Any:
    return {"t": key.isoformat()} if isinstance(key, datetime) else key


def _load_key(value: Any) -> KeyValue:
    if isinstance(value, dict):
        return datetime.fromisoformat(value["t"])
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("unsupported cursor key")
    return value


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
