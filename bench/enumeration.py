"""Account enumeration by timing: how long registration takes for a registered address and for a
new one, and the same for a password-reset request. Run: `.venv/bin/python -m bench.enumeration`.

The app runs in-process on a throwaway SQLite file with production password hashing; each
branch is timed alternately (so drift hits both alike) and reported as percentiles and as the
ratio of the medians. Distributions that overlap do not tell the branches apart in one request.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from skilltree.app import create_app
from skilltree.platform import migrations
from skilltree.platform.config import (
    AuthSettings,
    DatabaseSettings,
    MailSettings,
    RateLimitSettings,
    Settings,
)
from skilltree.platform.db import create_engine

PASSWORD = "correct horse battery staple 42"  # noqa: S105  (a throwaway account)


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    q = statistics.quantiles(ordered, n=10)
    return f"p10 {q[0]:7.1f}  median {statistics.median(ordered):7.1f}  p90 {q[-1]:7.1f} ms"


async def measure(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as home:
        url = f"sqlite+aiosqlite:///{Path(home) / 'bench.db'}"
        engine = create_engine(DatabaseSettings(url=url))
        await migrations.upgrade(engine)
        await engine.dispose()
        settings = Settings(
            database=DatabaseSettings(url=url),
            mail=MailSettings(outbox_dir=Path(home) / "outbox"),
            auth=AuthSettings(cookie_secure=False),
            rate_limit=RateLimitSettings(enabled=False),
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                await client.post(
                    "/v1/auth/register",
                    json={"email": "taken@example.org", "password": PASSWORD, "display_name": "T"},
                )
                timings: dict[str, list[float]] = {
                    "register, address taken": [],
                    "register, new address": [],
                    "reset, account exists": [],
                    "reset, no account": [],
                }
                for n in range(rounds):
                    cases = {
                        "register, address taken": ("/v1/auth/register", "taken@example.org"),
                        "register, new address": ("/v1/auth/register", f"new{n}@example.org"),
                        "reset, account exists": ("/v1/auth/password-reset", "taken@example.org"),
                        "reset, no account": ("/v1/auth/password-reset", f"none{n}@example.org"),
                    }
                    for name, (path, email) in cases.items():
                        body = {"email": email}
                        if path.endswith("register"):
                            body |= {"password": PASSWORD, "display_name": "Someone"}
                        started = time.perf_counter()
                        response = await client.post(path, json=body)
                        timings[name].append((time.perf_counter() - started) * 1000)
                        assert response.status_code < 300, response.text
    for name, samples in timings.items():
        print(f"{name:26} {percentiles(samples)}")
    for a, b in [
        ("register, new address", "register, address taken"),
        ("reset, account exists", "reset, no account"),
    ]:
        ratio = statistics.median(timings[a]) / statistics.median(timings[b])
        print(f"median ratio {a} / {b}: {ratio:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=30)
    asyncio.run(measure(parser.parse_args().rounds))


if __name__ == "__main__":
    main()
