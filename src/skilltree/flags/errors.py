"""What the feature-flag rules refuse."""

from __future__ import annotations

from skilltree.platform.errors import DomainError


class FlagNotFound(DomainError):
    status = 404
    type_slug = "flag-not-found"
    title = "Feature flag not found"

    def __init__(self, key: str) -> None:
        super().__init__(f"There is no feature flag {key!r}.")


class UnknownSubject(DomainError):
    status = 422
    type_slug = "unknown-flag-subject"
    title = "No such user or organisation"

    def __init__(self, subject: str, subject_id: int) -> None:
        super().__init__(f"There is no {subject} with id {subject_id} to target.")
