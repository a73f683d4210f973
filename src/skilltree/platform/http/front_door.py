"""Middleware in front of the whole FastAPI application.

A request to a FastAPI app crosses `FastAPI.__call__`, `Starlette.__call__`, then the stack
FastAPI builds: ServerErrorMiddleware, its exception telemetry, the app's own middleware
(`add_middleware`), routing. The first four cost every request coroutines and a wrapped `send`,
and act only when something below raises. Three of skilltree's layers need none of them: the
proxy-headers middleware (it only rewrites the scope), the liveness probe (probes.py) and the
fast path for cached public reads (fast_path.py), which answer from ready bytes.
`FrontDoorApp` runs such layers before the application itself, so a probe or a cached tree
crosses nothing else; every other request goes on into the full application, as before.

They wrap the application's `__call__` rather than taking a place in its middleware stack, so
whatever builds that stack (OpenTelemetry's instrumentation rewraps it when tracing is on) still
finds FastAPI's own outermost layer there. An error in a front-door layer reaches the server
(uvicorn logs it and answers a plain 500), as it would have from ServerErrorMiddleware without
the debug page. Decision 0078.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send


class FrontDoorApp(FastAPI):
    """FastAPI whose `add_front_middleware` layers run before the application is called."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        # Outermost first, as `user_middleware` keeps them.
        self.front_middleware: list[Middleware] = []
        # The layers around the application, built at the first call (as Starlette builds its
        # own stack), so that tests may still change `front_middleware` before.
        self.front_stack: ASGIApp | None = None

    def add_front_middleware(self, middleware_class: Any, **options: Any) -> None:
        """Like `add_middleware` (added last runs first), but in front of the application."""
        if self.front_stack is not None:
            raise RuntimeError("Cannot add middleware after an application has started")
        self.front_middleware.insert(0, Middleware(middleware_class, **options))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        stack = self.front_stack
        if stack is None:
            stack = self.front_stack = self._build_front_stack()
        # What Starlette sets first: the front layers find the app's state through it.
        scope["app"] = self
        await stack(scope, receive, send)

    def _build_front_stack(self) -> ASGIApp:
        app: ASGIApp = super().__call__
        for middleware_class, args, options in reversed(self.front_middleware):
            app = middleware_class(app, *args, **options)
        return app
