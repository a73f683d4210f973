"""The two baselines every skilltree figure is compared with, served the same way.

`bare` is the least an ASGI server can do per request: a fixed small JSON body, no framework.
`fastapi` is the least a FastAPI app does: one route returning a small dict. The gap between
them is the framework's cost; the gap between `fastapi` and skilltree is ours.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

BODY = b'{"status":"ok"}'


async def bare(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"15")],
        }
    )
    await send({"type": "http.response.body", "body": BODY})


fastapi = FastAPI()


@fastapi.get("/")
async def root() -> dict[str, str]:
    return {"status": "ok"}
