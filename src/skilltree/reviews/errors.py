"""Errors of the reviews domain."""

from __future__ import annotations

from skilltree.platform.errors import NotFound


class CardNotFound(NotFound):
    type_slug = "card-not-found"
    title = "Review card not found"

    def __init__(self, card_id: int) -> None:
        # Someone else's card is "not found" too: ids reveal nothing across learners.
        super().__init__(f"You have no active review card {card_id}.", card_id=card_id)
