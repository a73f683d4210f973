"""Calling the gRPC API as a client would: credentials in metadata, refusals read from status."""

from __future__ import annotations

import grpc

from skilltree.identity import Scope
from tests.support.accounts import Browser, bearer_headers

Metadata = tuple[tuple[str, str], ...]


async def token_metadata(person: Browser) -> Metadata:
    """The person's access token (a password sign-in of their API client), as call metadata."""
    return tuple((await bearer_headers(person)).items())


async def api_key_metadata(person: Browser, *scopes: Scope) -> Metadata:
    """A new API key of the person's with these scopes, as call metadata."""
    response = await person.client.post(
        "/v1/me/api-keys",
        json={"name": "grpc", "scopes": [scope.value for scope in scopes]},
        headers=person.write_headers,
    )
    assert response.status_code == 201, response.text
    return (("authorization", f"Bearer {response.json()['key']}"),)


def problem_type(error: grpc.aio.AioRpcError) -> str:
    return dict(error.trailing_metadata() or ()).get("problem-type", "")
