"""Errors of the background-work admin API."""

from __future__ import annotations

from skilltree.platform.errors import NotFound


class DeadLetterNotFound(NotFound):
    type_slug = "dead-letter-not-found"
    title = "Dead letter not found"

    def __init__(self, letter_id: int) -> None:
        super().__init__(f"There is no dead letter {letter_id}.", letter_id=letter_id)
