"""API models of the feature-flag administration (`/v1/admin/flags`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from skilltree.flags.service import FlagView
from skilltree.platform.http.bounds import MAX_ROW_ID

FLAG_KEY_PATTERN = r"^[a-z0-9]+(?:[-.][a-z0-9]+)*$"
MAX_FLAG_KEY_LENGTH = 64
MAX_OVERRIDES_PER_CHANGE = 1_000

SubjectId = Annotated[int, Field(ge=1, le=MAX_ROW_ID)]
Percentage = Annotated[int, Field(ge=0, le=100, description="Share of signed-in users, 0-100")]


class FlagIn(BaseModel):
    """A flag as PUT creates or replaces it (its overrides are kept)."""

    model_config = ConfigDict(extra="forbid")

    description: str = Field("", max_length=500)
    enabled: bool = Field(description="The answer for everyone no rule picks out")
    rollout_percentage: Percentage | None = None


class RulesPatch(BaseModel):
    """A partial change: absent fields stay; `rollout_percentage: null` removes the rollout;
    an override set to `null` is removed."""

    model_config = ConfigDict(extra="forbid")

    description: str | None = Field(None, max_length=500)
    enabled: bool | None = None
    rollout_percentage: Percentage | None = None
    users: dict[SubjectId, bool | None] = Field(
        default_factory=dict,
        max_length=MAX_OVERRIDES_PER_CHANGE,
        description="User id → true/false (override) or null (remove the override)",
    )
    organisations: dict[SubjectId, bool | None] = Field(
        default_factory=dict,
        max_length=MAX_OVERRIDES_PER_CHANGE,
        description="Organisation id → true/false (override) or null (remove the override)",
    )


class FlagOut(BaseModel):
    key: str
    description: str
    enabled: bool
    rollout_percentage: int | None
    users: dict[str, bool]
    organisations: dict[str, bool]
    updated_at: datetime | None

    @classmethod
    def of(cls, view: FlagView) -> FlagOut:
        return cls(
            key=view.key,
            description=view.description,
            enabled=view.enabled,
            rollout_percentage=view.rollout_percentage,
            users={str(k): v for k, v in sorted(view.users.items())},
            organisations={str(k): v for k, v in sorted(view.organisations.items())},
            updated_at=view.updated_at,
        )

    @classmethod
    def nothing(cls, key: str) -> FlagOut:
        """What is stored under a key with no flag: the representation If-Match compares
        against when a PUT creates."""
        return cls(
            key=key,
            description="",
            enabled=False,
            rollout_percentage=None,
            users={},
            organisations={},
            updated_at=None,
        )


class FlagListOut(BaseModel):
    items: list[FlagOut]
