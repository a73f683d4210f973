"""Sending GraphQL documents through the real app, as a client would."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.accounts import Browser


async def graphql(
    client: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """POST a document; the HTTP status is 200 whether or not fields failed (GraphQL's way)."""
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def as_learner(
    person: Browser, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A document sent by a signed-in browser: its cookie, and the CSRF token a POST needs."""
    return await graphql(person.client, query, variables, person.write_headers)


def problem_types(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["problem"]["type"] for error in body.get("errors", [])]
