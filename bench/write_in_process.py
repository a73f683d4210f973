"""`python -m bench.write_in_process`: the progress write's own CPU, without a server.

    .venv/bin/python -m bench.write_in_process                  # 5 rounds of 300 writes
    .venv/bin/python -m bench.write_in_process --against main   # A/B: this code and main's
    .venv/bin/python -m bench.write_in_process --against /tmp/old/src --uvloop

skilltree is built and started in a process of its own (production shape, PostgreSQL, Redis, the
benchmark account with 50 finished topics: bench/stage.py) and called directly with ASGI
messages, one request at a time: `PUT /v1/me/progress/backend/{topic}` by bearer token,
alternating `done` and `in_progress` so that each write changes something, and the minimal
FastAPI route (bench/baselines.py) the same number of times. The process's CPU time per
request (best and median of the rounds) is skilltree's share alone: no sockets to the client,
no HTTP parsing, no other writer waiting on the learner's lock, and far less bent by other work
on the machine than req/s under wrk. PostgreSQL's and Redis's own CPU are not counted.

`--against REF` runs a second skilltree beside the first, from another version of the code (a
git ref of this repository, exported with `git archive`, or a directory holding a `skilltree`
package), on the same database and Redis prefix, and alternates their rounds (`this, other,
other, this, ...`), so both see the same load on a shared machine. The report then gives both
and their ratios: of the bests, of the medians, and the median of each round's pair (the
steadiest when the load moves). `--uvloop` runs the apps on uvloop, as the server does; the
default asyncio loop spends more of its own CPU on each socket write, which makes every round
trip dearer.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from starlette.types import ASGIApp

from bench.baselines import fastapi as minimal_fastapi
from bench.in_process import call
from bench.stage import prepare, redis_prefix, sign_in_with, skilltree_env, throwaway_database
from bench.usage import load_average

ROOT = Path(__file__).resolve().parent.parent
RESULT = "result "  # how a child's answer to "round" starts (other lines are ignored)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=300, help="writes per round")
    parser.add_argument(
        "--against", help="a git ref or a src directory: the code to compare this code with"
    )
    parser.add_argument("--uvloop", action="store_true", help="run the apps on uvloop")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.requests, args.uvloop)
        return
    print(f"load average at the start: {load_average()}")
    with (
        _code_of(args.against) as other_src,
        throwaway_database() as database_url,
        redis_prefix() as prefix,
    ):
        env = skilltree_env(database_url, prefix)
        prepare(env)
        sources = {"write": ROOT / "src"}
        if other_src is not None:
            sources[f"write ({args.against})"] = other_src
        timings = _alternate(env, sources, args)
    _report(timings, list(sources))
    print(f"load average at the end: {load_average()}")


def _alternate(
    env: dict[str, str], sources: dict[str, Path], args: argparse.Namespace
) -> dict[str, list[float]]:
    """Every version's rounds in turn, then the minimal route's, round after round."""
    children: dict[str, subprocess.Popen[str]] = {}
    timings: dict[str, list[float]] = {name: [] for name in sources}
    timings["minimal FastAPI"] = []
    try:
        for name, src in sources.items():
            children[name] = _start_child(env, src, args)
        order = list(children)
        for _ in range(args.rounds):
            for name in order:
                timings[name].append(_ask(children[name], "round"))
            order.reverse()  # A B, B A, A B, ...: neither always goes first
            timings["minimal FastAPI"].append(_baseline_round(args.requests, args.uvloop))
    finally:
        for child in children.values():
            _stop(child)
    return timings


def _report(timings: dict[str, list[float]], versions: list[str]) -> None:
    print("request | µs CPU per request, best | median")
    for name, values in timings.items():
        print(f"{name} | {min(values):.0f} | {statistics.median(values):.0f}")
    baseline = statistics.median(timings["minimal FastAPI"])
    for name in versions:
        ratio = baseline / statistics.median(timings[name])
        print(f"{name} × minimal FastAPI (median CPU per request): {ratio:.4f}")
    if len(versions) == 2:
        this, other = (timings[name] for name in versions)
        # Each round's pair ran back to back, under much the same load from elsewhere.
        paired = statistics.median(a / b for a, b in zip(this, other, strict=True))
        print(
            f"{versions[0]} / {versions[1]}: best {min(this) / min(other):.3f},"
            f" median {statistics.median(this) / statistics.median(other):.3f},"
            f" median of the rounds' ratios {paired:.3f}"
        )


@contextmanager
def _code_of(against: str | None) -> Iterator[Path | None]:
    """The `src` directory of the version to compare with: a directory as given, or a git ref
    exported to a temporary one."""
    if against is None:
        yield None
        return
    if Path(against, "skilltree").is_dir():
        yield Path(against).resolve()
        return
    with tempfile.TemporaryDirectory(prefix="skilltree-ab-") as directory:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", against, "src"], check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", directory], input=archive, check=True)
        yield Path(directory) / "src"


def _start_child(env: dict[str, str], src: Path, args: argparse.Namespace) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "bench.write_in_process", "--child"]
    command += ["--requests", str(args.requests)] + (["--uvloop"] if args.uvloop else [])
    # The version's package first; `bench` from this checkout.
    path = os.pathsep.join([str(src), str(ROOT)])
    child = subprocess.Popen(
        command,
        env=os.environ | env | {"PYTHONPATH": path},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        _ask(child, "ready")
    except RuntimeError:
        _stop(child)
        raise
    return child


def _stop(child: subprocess.Popen[str]) -> None:
    try:
        _ask(child, "quit", answer=False)
        child.wait(timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        child.kill()
        child.wait()


def _ask(child: subprocess.Popen[str], command: str, *, answer: bool = True) -> float:
    assert child.stdin is not None
    assert child.stdout is not None
    child.stdin.write(command + "\n")
    child.stdin.flush()
    if not answer:
        return 0.0
    for line in child.stdout:
        if line.startswith(RESULT):
            return float(line.removeprefix(RESULT))
    raise RuntimeError(f"the benchmark's app stopped (exit status {child.wait()})")


def _child(requests: int, uvloop: bool) -> None:
    """One version of skilltree, answering "round" with its CPU µs per write."""
    results = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    with Path(os.devnull).open("w") as log, contextlib.redirect_stdout(log):  # the access log
        _run(_serve_rounds(requests, results), uvloop)


def _run(coroutine: object, uvloop: bool) -> None:
    if uvloop:
        import uvloop as loop

        loop.run(coroutine)  # type: ignore[arg-type]
    else:
        asyncio.run(coroutine)  # type: ignore[arg-type]


async def _serve_rounds(requests: int, results: object) -> None:
    from skilltree.app import create_app_from_environment

    app = create_app_from_environment()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            session = await sign_in_with(client)
        write = [(b"authorization", f"Bearer {session.bearer}".encode())]
        path = f"/v1/me/progress/backend/{session.topic}"
        commands = asyncio.StreamReader()
        loop = asyncio.get_running_loop()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(commands), sys.stdin)
        while (command := (await commands.readline()).decode().strip()) not in ("quit", ""):
            value = 0.0
            if command == "round":
                await _drive(app, "PUT", path, write, 50)  # warm
                started = time.process_time()
                await _drive(app, "PUT", path, write, requests)
                value = 1e6 * (time.process_time() - started) / requests
            print(f"{RESULT}{value}", file=results)  # type: ignore[call-overload]


def _baseline_round(requests: int, uvloop: bool) -> float:
    measured: list[float] = []

    async def measure() -> None:
        await _drive(minimal_fastapi, "GET", "/", [], 200)
        started = time.process_time()
        await _drive(minimal_fastapi, "GET", "/", [], requests)
        measured.append(1e6 * (time.process_time() - started) / requests)

    _run(measure(), uvloop)
    return measured[0]


async def _drive(
    app: ASGIApp, method: str, path: str, headers: list[tuple[bytes, bytes]], count: int
) -> None:
    """`count` requests, one at a time; a write alternates its two statuses."""
    statuses = (b'{"status": "done"}', b'{"status": "in_progress"}')
    for index in range(count):
        body = statuses[index % 2] if method == "PUT" else b""
        await call(app, method, path, headers, body)


if __name__ == "__main__":
    main()
