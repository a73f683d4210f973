"""Request and response models of the accounts API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, EmailStr, Field, StringConstraints

from skilltree.accounts.api_keys import Scope

DisplayName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
# Length is checked by the password policy, with a clear message; this only bounds the body.
Password = Annotated[str, StringConstraints(min_length=1, max_length=1024)]
Token = Annotated[str, StringConstraints(min_length=16, max_length=128)]


class RegisterIn(BaseModel):
    email: EmailStr
    password: Password
    display_name: DisplayName


class LoginIn(BaseModel):
    email: EmailStr
    password: Password


class TokenIn(BaseModel):
    token: Token


class EmailIn(BaseModel):
    email: EmailStr


class ResetPasswordIn(BaseModel):
    token: Token
    password: Password


class ChangePasswordIn(BaseModel):
    current_password: Password
    new_password: Password


class RefreshIn(BaseModel):
    refresh_token: Token


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "Bearer"  # noqa: S105  (the RFC 6750 scheme name)
    expires_in: int = Field(description="Seconds until the access token expires")
    refresh_token: str = Field(description="Use once with POST /v1/auth/refresh")


class PasswordChangedOut(BaseModel):
    csrf_token: str | None = Field(
        description="The new CSRF token of the replaced browser session (null for API clients)"
    )


class Accepted(BaseModel):
    status: str = "accepted"
    detail: str


class UserOut(BaseModel):
    id: int
    email: str
    display_name: str
    email_verified: bool
    created_at: datetime


class SignedInOut(BaseModel):
    user: UserOut
    csrf_token: str = Field(description="Send it as X-CSRF-Token with every unsafe request")
    session_expires_at: datetime = Field(description="The absolute end of this session")


class SessionOut(BaseModel):
    id: int
    current: bool
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    user_agent: str
    ip: str


class SessionListOut(BaseModel):
    items: list[SessionOut]


class SecurityEventOut(BaseModel):
    kind: str
    occurred_at: datetime
    ip: str
    user_agent: str
    details: dict[str, Any]


class SecurityEventListOut(BaseModel):
    items: list[SecurityEventOut]


class ApiKeyIn(BaseModel):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    scopes: list[Scope] = Field(min_length=1)
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)


class ApiKeyOut(BaseModel):
    id: int
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked: bool


class ApiKeyCreatedOut(ApiKeyOut):
    key: str = Field(description="The full key, shown only in this response")


class ApiKeyListOut(BaseModel):
    items: list[ApiKeyOut]
