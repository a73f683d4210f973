"""Keys for matching and slugs for URLs."""

from __future__ import annotations

import pytest

from skilltree.roadmaps.importing import normalize_key, slugify


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("**JWT** Best-Practices!", "jwt best practices"),
        ("Client–Server model", "client server model"),
        ("ＦＵＬＬ width", "full width"),
    ],
)
def test_normalize_key(text: str, key: str) -> None:
    assert normalize_key(text) == key


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("Idempotency keys", "idempotency-keys"),
        ("HTTP/1.1 vs HTTP/2", "http-1-1-vs-http-2"),
        ("Café naïve", "cafe-naive"),
        ("🚀🔥", "topic"),
    ],
)
def test_slugify(text: str, slug: str) -> None:
    assert slugify(text) == slug


def test_slugs_are_capped_at_80_characters_on_a_word_boundary() -> None:
    slug = slugify("word " * 40)

    assert len(slug) <= 80
    assert not slug.endswith("-")
