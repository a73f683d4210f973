"""One HTTP delivery attempt to a receiver, through the SSRF guard.

The connection goes to the address the guard checked (the Host header and TLS SNI still name
the host, so virtual hosting and certificate checks work), redirects are not followed (a 3xx
could point anywhere, the guard's check would not cover it), every phase has a timeout, and at
most `max_response_bytes` of the answer are read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from skilltree.platform.config import WebhookSettings
from skilltree.webhooks.ssrf import ForbiddenDestination, resolve

EXCERPT_BYTES = 512
USER_AGENT = "skilltree-webhooks/1"


@dataclass(frozen=True)
class AttemptResult:
    status_code: int | None
    latency_ms: int
    excerpt: str
    error: str | None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


async def post(
    url: str, body: str, headers: dict[str, str], settings: WebhookSettings
) -> AttemptResult:
    started = time.monotonic()
    try:
        destination = await resolve(
            url,
            allow_private=settings.allow_private_addresses,
            allow_http=settings.allow_http,
        )
    except ForbiddenDestination as error:
        return AttemptResult(None, _since(started), "", f"refused: {error.detail}")
    host = f"[{destination.address}]" if ":" in destination.address else destination.address
    pinned = f"{destination.scheme}://{host}:{destination.port}{destination.path}"
    default_port = 443 if destination.scheme == "https" else 80
    host_header = destination.host + (
        "" if destination.port == default_port else f":{destination.port}"
    )
    timeout = httpx.Timeout(settings.timeout_seconds, connect=settings.connect_timeout_seconds)
    try:
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
            request = client.build_request(
                "POST",
                pinned,
                content=body.encode(),
                headers={
                    **headers,
                    "host": host_header,
                    "content-type": "application/json",
                    "user-agent": USER_AGENT,
                },
                extensions={"sni_hostname": destination.host},
            )
            response = await client.send(request, stream=True)
            try:
                head = await _read_at_most(response, settings.max_response_bytes)
            finally:
                await response.aclose()
    except httpx.HTTPError as error:
        return AttemptResult(None, _since(started), "", f"{type(error).__name__}: {error}")
    excerpt = head[:EXCERPT_BYTES].decode("utf-8", errors="replace")
    return AttemptResult(response.status_code, _since(started), excerpt, None)


async def _read_at_most(response: httpx.Response, limit: int) -> bytes:
    received = bytearray()
    async for chunk in response.aiter_raw():
        received.extend(chunk)
        if len(received) >= limit:
            break  # the rest is never downloaded: closing the stream drops the connection
    return bytes(received[:limit])


def _since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
