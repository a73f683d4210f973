"""The body of an account deletion: the re-authentication it needs."""

from __future__ import annotations

from pydantic import BaseModel, Field

from skilltree.accounts.schemas import Password, SixDigits


class DeleteAccountIn(BaseModel):
    password: Password = Field(description="The current password")
    code: SixDigits | None = Field(
        default=None, description="A current authenticator code; required when MFA is on"
    )
