"""The same-work ceiling of bench/fast_path.py sends exactly the bytes it was given."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from bench.fast_path import BODY_FILE, ceiling


async def test_the_ceiling_sends_the_given_bytes_as_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = b'{"topics":[' + b'{"slug":"x"},' * 1000 + b'{"slug":"y"}]}'
    (tmp_path / "tree.json").write_bytes(body)
    monkeypatch.setenv(BODY_FILE, str(tmp_path / "tree.json"))

    transport = httpx.ASGITransport(app=ceiling())
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        response = await client.get("/")

    assert response.status_code == 200
    assert response.content == body
    assert response.headers["content-type"] == "application/json"
