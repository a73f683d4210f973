"""What a production worker loads: libraries needed by rare requests load with the first of them.

Every module a worker imports stays resident for its whole life, so a library that only a few
requests need (zxcvbn's word lists when a password is chosen, authlib when someone signs in with
an OpenID provider) is imported by those requests, not at start-up. Each test starts a fresh
interpreter, as a server does, so that what the test suite itself imported does not count.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from skilltree.platform import migrations
from skilltree.platform.config import DatabaseSettings
from skilltree.platform.db import create_engine
from tests.support.redis import REDIS_URL, isolated_prefix

# A worker as uvicorn runs it: the app from the environment, its lifespan, then the requests.
SERVE = """
import asyncio, json, sys
import httpx
from skilltree.app import create_app_from_environment

async def serve(requests):
    app = create_app_from_environment()
    statuses = []
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            for method, path, body in requests:
                statuses.append((await client.request(method, path, json=body)).status_code)
    return statuses

statuses = asyncio.run(serve(json.loads(sys.argv[1])))
print(json.dumps({"statuses": statuses, "modules": sorted(sys.modules)}))
"""

SIGN_IN_ATTEMPT = ("POST", "/v1/auth/login", {"email": "nobody@example.com", "password": "x" * 16})
BROWSING = [
    ("GET", "/livez", None),
    ("GET", "/v1/roadmaps", None),
    ("GET", "/v1/auth/oidc/providers", None),
    SIGN_IN_ATTEMPT,
]
SIGN_UP = (
    "POST",
    "/v1/auth/register",
    {"email": "ada@example.com", "password": "a long passphrase of mine", "display_name": "Ada"},
)


@pytest.fixture
async def database_url(tmp_path: Path) -> str:
    """A database of the worker's own: what it commits must not reach other tests."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'worker.db'}"
    engine = create_engine(DatabaseSettings(url=url))
    await migrations.upgrade(engine)
    await engine.dispose()
    return url


def serve(
    database_url: str, tmp_path: Path, requests: list[Any], **settings: str
) -> tuple[list[int], set[str]]:
    """Serve `requests` in a fresh production worker: their statuses and the modules loaded."""
    environment = os.environ | {
        "SKILLTREE_ENV": "production",
        "SKILLTREE_SECRET_KEY": "a-production-secret-of-32-characters!",
        "SKILLTREE_DATABASE_URL": database_url,
        "SKILLTREE_MAIL_OUTBOX_DIR": str(tmp_path / "outbox"),
        "SKILLTREE_LOG_ACCESS_LOG": "false",
        **settings,
    }
    done = subprocess.run(
        [sys.executable, "-c", SERVE, json.dumps(requests)],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(done.stdout.splitlines()[-1])
    return report["statuses"], set(report["modules"])


def test_the_password_word_lists_load_only_when_a_password_is_chosen(
    database_url: str, tmp_path: Path
) -> None:
    browsing, loaded_browsing = serve(database_url, tmp_path, BROWSING)
    signing_up, loaded_signing_up = serve(database_url, tmp_path, [SIGN_UP])

    assert browsing == [200, 200, 200, 401]
    assert "zxcvbn" not in loaded_browsing
    assert signing_up == [202]
    assert "zxcvbn" in loaded_signing_up


def test_the_mail_templates_load_with_the_first_e_mail(database_url: str, tmp_path: Path) -> None:
    browsing, loaded_browsing = serve(database_url, tmp_path, BROWSING)
    signing_up, loaded_signing_up = serve(database_url, tmp_path, [SIGN_UP])  # a verification

    assert browsing == [200, 200, 200, 401]
    assert "jinja2" not in loaded_browsing
    assert signing_up == [202]
    assert "jinja2" in loaded_signing_up
    assert list((tmp_path / "outbox").glob("*.eml"))


def test_the_oidc_library_loads_only_where_a_provider_is_configured(
    database_url: str, tmp_path: Path
) -> None:
    provider = {
        "name": "corp",
        "issuer": "https://id.example.com",
        "client_id": "skilltree",
        "client_secret": "provider-secret",
    }

    without, loaded_without = serve(database_url, tmp_path, BROWSING)
    with_provider, loaded_with_provider = serve(
        database_url, tmp_path, BROWSING, SKILLTREE_AUTH_OIDC_PROVIDERS=json.dumps([provider])
    )

    assert without == with_provider == [200, 200, 200, 401]
    assert "authlib" not in loaded_without
    assert "authlib" in loaded_with_provider


@pytest.mark.redis
async def test_rate_limits_in_redis_load_no_redis_client_but_redis_py(
    database_url: str, tmp_path: Path
) -> None:
    async with isolated_prefix() as prefix:
        statuses, loaded = serve(
            database_url,
            tmp_path,
            BROWSING,
            SKILLTREE_REDIS_URL=REDIS_URL,
            SKILLTREE_REDIS_KEY_PREFIX=prefix,
        )

    assert statuses == [200, 200, 200, 401]
    assert "redis" in loaded
    assert "coredis" not in loaded


def test_the_mojibake_repair_tables_load_only_with_text_to_repair(
    database_url: str, tmp_path: Path
) -> None:
    browsing, loaded_browsing = serve(database_url, tmp_path, BROWSING)
    repairing = subprocess.run(
        [sys.executable, "-c", REPAIR, "ðŸ“Œ Pinned"], capture_output=True, text=True, check=True
    )

    assert browsing == [200, 200, 200, 401]
    assert {"ftfy", "wcwidth"}.isdisjoint(loaded_browsing)
    assert json.loads(repairing.stdout) == {"text": "📌 Pinned", "ftfy": True}


# A roadmap upload's text, mojibake included, decoded as an import does.
REPAIR = """
import json, sys
from skilltree.roadmaps.importing.encoding import decode
text = decode(sys.argv[1].encode()).text
print(json.dumps({"text": text, "ftfy": "ftfy" in sys.modules}))
"""
