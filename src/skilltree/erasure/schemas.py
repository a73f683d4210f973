"""The body of an account deletion: the re-authentication it needs."""

from __future__ import annotations

from pydantic import BaseModel, Field

from skilltree.accounts.schemas import Password, SixDigits


class DeleteAccountIn(BaseModel):
    password: Password | None = Field(
        default=None,
        description=(
            "The current password. Leave it out only right after signing in (a browser session"
            " at most 5 minutes old): how an account that signs in through a provider confirms"
        ),
    )
    code: SixDigits | None = Field(
        default=None, description="A current authenticator code; required when MFA is on"
    )
