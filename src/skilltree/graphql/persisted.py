"""Persisted queries: a client names a document by its SHA-256 instead of sending it.

Two modes (docs/decisions/0042-graphql-subscriptions-ide-and-persisted-queries.md):

- automatic (the default): a client sends `extensions.persistedQuery.sha256Hash` alone; when
  this process knows the hash, the document runs, otherwise the answer is the
  PERSISTED_QUERY_NOT_FOUND error and the client sends the document with its hash once, which is
  checked and remembered. Documents without a hash run as before. It saves bandwidth, and lets a
  GET carry a long query in a short URL that shared caches can key on.
- registered only (`SKILLTREE_GRAPHQL_PERSISTED_ONLY`): only the documents of the registry file
  (`SKILLTREE_GRAPHQL_PERSISTED_QUERIES_FILE`, built from the clients' code at release time)
  run. Nothing else is parsed, so an attacker cannot send a document of their own design.

A hash that does not match the document sent with it is refused in both modes: remembering it
would let one client make others run a different document under a known name.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from skilltree.platform.config import GraphQLSettings
from skilltree.platform.errors import DomainError

SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
# The `code` clients of the automatic persisted queries convention look for.
NOT_FOUND_CODE = "PERSISTED_QUERY_NOT_FOUND"
NOT_FOUND_MESSAGE = "PersistedQueryNotFound"


class PersistedQueryNotFound(DomainError):
    status = 400
    type_slug = "persisted-query-not-found"
    title = "Persisted query not found"
    code = NOT_FOUND_CODE


class PersistedQueryRequired(DomainError):
    status = 400
    type_slug = "persisted-query-required"
    title = "Persisted query required"
    code = "PERSISTED_QUERY_REQUIRED"


class PersistedQueryMismatch(DomainError):
    status = 400
    type_slug = "persisted-query-mismatch"
    title = "Persisted query hash mismatch"
    code = "PERSISTED_QUERY_MISMATCH"


class InvalidPersistedQuery(DomainError):
    status = 400
    type_slug = "invalid-persisted-query"
    title = "Invalid persisted query"
    code = "INVALID_PERSISTED_QUERY"


def document_hash(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


def load_registry(path: Path) -> dict[str, str]:
    """The registry file, each entry checked: a wrong hash is a release mistake, found at start."""
    entries = orjson.loads(path.read_bytes())
    if not isinstance(entries, dict):
        raise ValueError(f"{path}: expected a JSON object of sha256 -> document")
    registry: dict[str, str] = {}
    for name, document in entries.items():
        if not isinstance(document, str) or document_hash(document) != name.lower():
            raise ValueError(f"{path}: {name!r} is not the SHA-256 of its document")
        registry[name.lower()] = document
    return registry


class PersistedQueries:
    def __init__(
        self, registered: Mapping[str, str], *, registered_only: bool, capacity: int
    ) -> None:
        self._registered = dict(registered)
        self._registered_only = registered_only
        self._capacity = capacity
        self._learned: OrderedDict[str, str] = OrderedDict()

    @classmethod
    def from_settings(cls, settings: GraphQLSettings) -> PersistedQueries:
        path = settings.persisted_queries_file
        registered = load_registry(path) if path is not None else {}
        return cls(
            registered,
            registered_only=settings.persisted_only,
            capacity=settings.persisted_cache_size,
        )

    def document(self, query: str | None, extensions: Mapping[str, Any] | None) -> str | None:
        """The document to run for this request (raises when it may not run)."""
        named = extensions.get("persistedQuery") if isinstance(extensions, Mapping) else None
        if named is None:
            if self._registered_only:
                raise PersistedQueryRequired(
                    "This server runs registered documents only: send "
                    "extensions.persistedQuery.sha256Hash."
                )
            return query
        sha256 = _hash_of(named)
        if query is not None:
            if document_hash(query) != sha256:
                raise PersistedQueryMismatch("sha256Hash is not the SHA-256 of the query sent.")
            if not self._registered_only:
                self._remember(sha256, query)
        known = self._registered.get(sha256) or self._recall(sha256)
        if known is None:
            raise PersistedQueryNotFound(NOT_FOUND_MESSAGE)
        return known

    def _remember(self, sha256: str, document: str) -> None:
        if self._capacity == 0:
            return
        self._learned[sha256] = document
        self._learned.move_to_end(sha256)
        while len(self._learned) > self._capacity:
            self._learned.popitem(last=False)

    def _recall(self, sha256: str) -> str | None:
        if self._registered_only:
            return None
        document = self._learned.get(sha256)
        if document is not None:
            self._learned.move_to_end(sha256)
        return document


def _hash_of(named: object) -> str:
    if not isinstance(named, dict) or named.get("version") != 1:
        raise InvalidPersistedQuery("extensions.persistedQuery must be {version: 1, sha256Hash}.")
    sha256 = named.get("sha256Hash")
    if not isinstance(sha256, str) or not SHA256_HEX.match(sha256.lower()):
        raise InvalidPersistedQuery("sha256Hash must be 64 hexadecimal digits.")
    return sha256.lower()
