"""Accept negotiation (RFC 9110 §12.5.1): q-values, specificity, server preference, 406."""

from __future__ import annotations

import pytest

from skilltree.platform.http.negotiation import NotAcceptable, negotiate

OFFERED = ("application/json", "text/csv", "text/markdown")


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, "application/json"),
        ("", "application/json"),
        ("*/*", "application/json"),
        ("text/csv", "text/csv"),
        ("TEXT/CSV", "text/csv"),
        ("text/*", "text/csv"),  # a tie between csv and markdown goes to the server's order
        ("text/markdown;q=1, text/csv;q=0.9", "text/markdown"),
        ("text/*;q=0.5, text/markdown", "text/markdown"),
        ("text/*, text/csv;q=0", "text/markdown"),  # the specific range decides for csv
        ("application/json;q=0.1, text/csv;q=0.2", "text/csv"),
        ("text/csv;charset=utf-8", "text/csv"),
        ("garbage, text/csv", "text/csv"),  # a malformed member is ignored
        ("text/csv;q=abc, text/markdown", "text/markdown"),
    ],
)
def test_the_preferred_acceptable_type_wins(accept: str | None, chosen: str) -> None:
    assert negotiate(accept, OFFERED) == chosen


@pytest.mark.parametrize(
    "accept", ["image/png", "*/*;q=0", "text/html, application/xml", "garbage", "*/csv"]
)
def test_nothing_acceptable_raises_a_406(accept: str) -> None:
    with pytest.raises(NotAcceptable) as raised:
        negotiate(accept, OFFERED)

    assert raised.value.status == 406
    assert raised.value.extensions["available"] == list(OFFERED)
