"""Errors of the search domain."""

from __future__ import annotations

from skilltree.platform.errors import UnprocessableContent


class EmptySearch(UnprocessableContent):
    type_slug = "empty-search"
    title = "Nothing to search for"

    def __init__(self) -> None:
        super().__init__(
            "The query has no word to look for (only punctuation, or only excluded words).",
            field="q",
        )


class StatusNeedsLearner(UnprocessableContent):
    type_slug = "status-needs-learner"
    title = "Status filter needs your progress"

    def __init__(self) -> None:
        super().__init__(
            "Filtering by status needs a sign-in that may read your progress.", field="status"
        )
