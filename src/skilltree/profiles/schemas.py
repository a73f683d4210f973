"""Request and response models of the profiles API."""

from __future__ import annotations

import unicodedata
from datetime import datetime
from functools import lru_cache
from typing import Annotated
from zoneinfo import available_timezones

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from skilltree.platform.http.api_description import not_null

# Lower-case letters, digits and inner hyphens: safe in a URL path as it is.
HANDLE_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$"
Handle = Annotated[str, StringConstraints(pattern=HANDLE_PATTERN, max_length=40)]


@lru_cache(maxsize=1)
def _known_time_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _iana_zone(name: str) -> str:
    # Looked up in the list rather than by ZoneInfo(name), which would read any file path.
    if name not in _known_time_zones():
        raise ValueError("must be an IANA time zone name such as 'Europe/Berlin' or 'UTC'")
    return name


TimeZoneName = Annotated[str, StringConstraints(max_length=64), AfterValidator(_iana_zone)]


# The zero-width joiner builds emoji; every other control or format character (bidi
# overrides that reorder how a name is shown, invisible marks, line breaks) is refused.
_ALLOWED_FORMAT = frozenset("\u200d")


def _printable(name: str) -> str:
    for char in name:
        category = unicodedata.category(char)
        if char not in _ALLOWED_FORMAT and (category[0] == "C" or category in ("Zl", "Zp")):
            raise ValueError("must not contain control, format or line-break characters")
    return unicodedata.normalize("NFC", name)


DisplayName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    AfterValidator(_printable),
]


class AvatarOut(BaseModel):
    url: str = Field(description="The avatar, 128 pixels a side (WebP)")
    sizes: dict[str, str] = Field(description="The avatar's link for each size, in pixels a side")


class ProfileOut(BaseModel):
    display_name: str = Field(description="The name other people see")
    handle: str | None = Field(description="Public name used in badge URLs")
    time_zone: str = Field(description="IANA zone in which streak days are counted")
    is_public: bool = Field(description="Whether badges and public stats are shown")
    share_progress_by_concept: bool = Field(
        description="Progress on a concept shows in every roadmap that contains it"
    )
    updated_at: datetime | None
    avatar: AvatarOut | None = Field(
        default=None,
        description=(
            "Links to the avatar once its sizes are made (null without an avatar or a "
            "handle). Cacheable by anyone while the profile is public; a new avatar has new links"
        ),
    )


class ProfilePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # None is "not sent"; only the handle may be sent as null (it clears it).
    display_name: DisplayName | None = Field(default=None, json_schema_extra=not_null)
    handle: Handle | None = None
    time_zone: TimeZoneName | None = Field(default=None, json_schema_extra=not_null)
    is_public: bool | None = Field(default=None, json_schema_extra=not_null)
    share_progress_by_concept: bool | None = Field(default=None, json_schema_extra=not_null)
