"""The schemathesis hooks behave as the fuzz run relies on."""

from __future__ import annotations

from tests.fuzz.hooks import map_headers


def test_every_generated_idempotency_key_is_a_new_one_within_the_documented_length() -> None:
    first = map_headers(None, {"idempotency-key": "null", "accept": "*/*"})
    second = map_headers(None, {"Idempotency-Key": "null"})
    long = map_headers(None, {"idempotency-key": "k" * 255})

    assert first is not None
    assert second is not None
    assert long is not None
    assert first["idempotency-key"] != second["Idempotency-Key"]
    assert first["accept"] == "*/*"
    assert 1 <= len(long["idempotency-key"]) <= 255


def test_a_request_without_headers_stays_without() -> None:
    assert map_headers(None, None) is None
