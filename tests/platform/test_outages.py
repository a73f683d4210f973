"""A dependency that is down is a 503 with Retry-After, not a 500, and the same process serves
again once it is back; a real bug stays a logged 500.

The database goes down behind a TCP proxy that the test cuts (every open connection drops, new
ones are refused, as when PostgreSQL stops). Sign-in during a Redis outage:
tests/accounts/test_throttle_outage.py."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from skilltree.app import create_app
from skilltree.platform.config import Settings
from skilltree.platform.db import Database
from skilltree.platform.http.middleware import UnhandledErrorMiddleware
from tests.support.accounts import bearer_headers, register_and_verify, sign_in
from tests.support.databases import migrated_postgres_database
from tests.support.tcp_proxy import TcpProxy, tcp_proxy


@asynccontextmanager
async def serving(
    settings: Settings, database: Database | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    app: FastAPI = create_app(settings, database=database)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "/problems/unavailable"
    assert int(response.headers["retry-after"]) > 0


# --- the database -------------------------------------------------------------------------------


@asynccontextmanager
async def through_a_proxy(settings: Settings) -> AsyncIterator[tuple[Settings, TcpProxy]]:
    """The settings with the database reached through a proxy the test can cut."""
    url = make_url(settings.database.url)
    async with tcp_proxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        proxied = url.set(port=proxy.port).render_as_string(hide_password=False)
        database = settings.database.model_copy(update={"url": proxied})
        yield settings.model_copy(update={"database": database}), proxy


@pytest.mark.postgres
@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
async def test_a_database_outage_is_a_503_with_retry_after_and_the_process_recovers(
    settings: Settings,
) -> None:
    async with through_a_proxy(settings) as (proxied, proxy), serving(proxied) as client:
        before = await client.get("/v1/roadmaps")

        await proxy.stop()
        read = await client.get("/v1/roadmaps")
        write = await client.post("/v1/auth/register", json={"email": "x@example.org"})
        register = await client.post(
            "/v1/auth/register",
            json={
                "email": "b@example.org",
                "password": "a long passphrase 42",
                "display_name": "B",
            },
        )
        ready = await client.get("/readyz")

        await proxy.start()
        after = await client.get("/v1/roadmaps")
        ready_after = await client.get("/readyz")

    assert before.status_code == 200
    assert_unavailable(read)
    assert write.status_code == 422  # bad input is still refused before the database is needed
    assert_unavailable(register)
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"] == "failing"
    assert after.status_code == 200
    assert ready_after.status_code == 200


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)  # only the settings are used
async def test_an_unreachable_database_is_a_503_from_the_first_request(
    settings: Settings, unused_tcp_port: int
) -> None:
    nowhere = make_url("postgresql+asyncpg://skilltree@127.0.0.1/skilltree").set(
        port=unused_tcp_port
    )
    database = settings.database.model_copy(
        update={"url": nowhere.render_as_string(hide_password=False)}
    )
    async with serving(settings.model_copy(update={"database": database})) as client:
        response = await client.get("/v1/roadmaps")

    assert_unavailable(response)


# --- a bug stays a bug --------------------------------------------------------------------------


def app_running(statement: str, engine: AsyncEngine) -> Starlette:
    async def route(_: Request) -> Response:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
        return PlainTextResponse("ran")

    app = Starlette(routes=[Route("/", route)])
    app.add_middleware(UnhandledErrorMiddleware)
    return app


@pytest.mark.parametrize(
    "engine", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
async def test_a_sql_syntax_error_stays_a_500(engine: AsyncEngine) -> None:
    transport = httpx.ASGITransport(app=app_running("SELEC 1", engine))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/")

    assert response.status_code == 500
    assert "retry-after" not in response.headers


# --- the API description tells the truth about it -----------------------------------------------


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


@pytest.mark.postgres
@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
async def test_every_operation_that_answers_503_in_a_database_outage_lists_it(
    settings: Settings,
) -> None:
    """Every operation is called, signed in, with the database down: each one that answers 503
    says so in the document, as problem+json with Retry-After. On a database of its own: the
    account it registers is committed, and would be there for the next test that registers."""
    async with migrated_postgres_database() as url:
        own = settings.model_copy(
            update={"database": settings.database.model_copy(update={"url": url})}
        )
        answered, document = await _call_everything_while_the_database_is_down(own)

    wrong = []
    for name, response in answered.items():
        method, path = name.split(" ", 1)
        documented = document["paths"][path][method]["responses"].get("503")
        if response.status_code != 503:
            continue
        if documented is None:
            wrong.append(f"{name}: 503 not listed")
        elif response.headers["content-type"] not in documented.get("content", {}):
            wrong.append(f"{name}: {response.headers['content-type']} not listed")
        elif any(header not in response.headers for header in documented.get("headers", {})):
            wrong.append(f"{name}: a listed header is missing")
    unavailable = [name for name, response in answered.items() if response.status_code == 503]
    # The outage was met: most operations need the database. Those that do not answer as they
    # would (a body that fails validation, a role the kept caller lacks, what is in memory),
    # and none with a 500.
    assert len(unavailable) > len(answered) / 2
    failed = [name for name, response in answered.items() if response.status_code >= 500]
    assert failed == unavailable
    assert wrong == []


async def _call_everything_while_the_database_is_down(
    settings: Settings,
) -> tuple[dict[str, httpx.Response], dict[str, Any]]:
    """Sign in, cut the database, then call every operation of the document once."""
    async with through_a_proxy(settings) as (proxied, proxy), serving(proxied) as client:
        document: dict[str, Any] = (await client.get("/openapi.json")).json()
        await register_and_verify(client, proxied.mail.outbox_dir)
        person = await sign_in(client)
        headers = await bearer_headers(person)

        await proxy.stop()
        answered: dict[str, httpx.Response] = {}
        for path, operations in document["paths"].items():
            for method in operations:
                answered[f"{method} {path}"] = await client.request(
                    method.upper(), _concrete(path), json={}, headers=headers, timeout=10
                )
    return answered, document
