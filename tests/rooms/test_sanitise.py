"""Chat bodies are plain text: what the sanitiser keeps and removes."""

from __future__ import annotations

import pytest

from skilltree.rooms.errors import InvalidMessage
from skilltree.rooms.service import sanitise


def test_markup_stays_text_for_clients_to_show_as_text() -> None:
    assert sanitise("<b>hi</b> & bye", 100) == "<b>hi</b> & bye"


def test_bidirectional_overrides_and_control_characters_are_removed() -> None:
    assert sanitise("\u202eevil\u202c\x00\x07 ok\u200b", 100) == "evil ok"


def test_emoji_sequences_and_newlines_survive() -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    assert sanitise(f"  line one\nline two {family}  ", 100) == f"line one\nline two {family}"


def test_text_is_normalised_to_nfc() -> None:
    assert sanitise("Cafe\u0301", 100) == "Caf\u00e9"


@pytest.mark.parametrize("body", ["", "   ", "\u202e\u200b", "x" * 101])
def test_empty_or_oversized_bodies_are_refused(body: str) -> None:
    with pytest.raises(InvalidMessage):
        sanitise(body, 100)
