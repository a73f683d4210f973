"""What a credential may do. Sessions and access tokens act with all of the user's rights;
personal API keys carry a subset, and `admin` includes every other scope."""

from __future__ import annotations

from enum import StrEnum


class Scope(StrEnum):
    PROGRESS_READ = "progress:read"
    PROGRESS_WRITE = "progress:write"
    ROADMAPS_WRITE = "roadmaps:write"
    ADMIN = "admin"
