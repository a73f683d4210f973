"""Request and response models of the accounts API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints, model_validator

from skilltree.identity import Scope

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
    is_admin: bool = Field(description="A platform administrator of this installation")
    created_at: datetime


class AdminUserOut(UserOut):
    mfa_enabled: bool


class AdminUserListOut(BaseModel):
    items: list[AdminUserOut]
    total: int
    limit: int
    offset: int


class AdminRoleIn(BaseModel):
    is_admin: bool


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


class MfaChallengeOut(BaseModel):
    mfa_required: bool = True
    mfa_token: str = Field(description="Send it back with a code to finish signing in")
    expires_in: int = Field(description="Seconds left to answer")


SixDigits = Annotated[str, StringConstraints(pattern=r"^[0-9]{6}$")]


class MfaAnswerIn(BaseModel):
    # Exactly one of the two answers, as the validator below demands, stated in the document.
    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {"required": ["code"], "properties": {"code": {"type": "string"}}},
                {
                    "required": ["recovery_code"],
                    "properties": {"recovery_code": {"type": "string"}},
                },
            ]
        }
    )

    mfa_token: Token
    code: SixDigits | None = None
    recovery_code: Annotated[str, StringConstraints(max_length=32)] | None = None

    @model_validator(mode="after")
    def _exactly_one_answer(self) -> MfaAnswerIn:
        if (self.code is None) == (self.recovery_code is None):
            raise ValueError("send either code or recovery_code")
        return self


class MfaCodeIn(BaseModel):
    code: SixDigits


class PasswordIn(BaseModel):
    password: Password


class MfaEnrolmentOut(BaseModel):
    secret: str = Field(description="Base32 TOTP secret, for manual entry")
    otpauth_uri: str = Field(description="The same as an otpauth:// URI, for a QR code")


class RecoveryCodesOut(BaseModel):
    recovery_codes: list[str] = Field(description="Single-use codes, shown only now")
    csrf_token: str | None = Field(
        description="The new CSRF token of the replaced browser session (null for API clients)"
    )


class OidcProviderOut(BaseModel):
    name: str
    login_url: str = Field(description="Send the browser here to sign in with this provider")


class OidcProviderListOut(BaseModel):
    items: list[OidcProviderOut]
