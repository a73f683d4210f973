"""The signed-in caller, as every domain sees it: an identity, not a database row."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from skilltree.identity.scopes import Scope


class Credential(StrEnum):
    """How the caller proved who they are."""

    SESSION = "session"  # a browser session cookie (with its CSRF token)
    ACCESS_TOKEN = "access_token"  # noqa: S105  (a kind, not a token)  short-lived bearer token of a token family
    API_KEY = "api_key"  # a personal API key, limited to its scopes


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is making the request, through which credential, with which scopes.

    `scopes` is None for sessions and access tokens, which act with the user's full rights;
    an API key carries the scopes it was minted with. Organisation roles are not loaded for
    every request: the routes whose rules need them ask for a `Viewer`.
    """

    user_id: int
    email: str
    display_name: str
    email_verified: bool
    is_admin: bool
    credential: Credential
    scopes: frozenset[str] | None = None

    def has_scope(self, scope: Scope | str) -> bool:
        """Sessions and access tokens allow every scope; API keys only their own (`admin`
        includes every other)."""
        if self.scopes is None:
            return True
        return scope in self.scopes or Scope.ADMIN in self.scopes

    @property
    def by_api_key(self) -> bool:
        return self.credential is Credential.API_KEY
