"""`python -m bench.soak --minutes 10`: does the worker's memory stay flat under hours of use?

One skilltree worker in its production shape (PostgreSQL, Redis, access log, rate limiter) is
driven at a moderate rate by a mix of what learners do — read the tree, revalidate it, read
their progress and summary, list and open due reviews, mark topics — for the given time, while
the worker's resident memory is sampled every few seconds. The report gives the memory at the
start, its peak and its end, and its slope (least squares, MiB per minute) over the whole run
and over the run after its first minute (warm-up: pools filling, caches and lazy imports).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import tempfile
import time
from dataclasses import dataclass

from bench.servers import SERVER_KINDS, Server, serve
from bench.stage import (
    SKILLTREE_APP,
    Session,
    prepare,
    redis_prefix,
    sign_in,
    skilltree_env,
    throwaway_database,
)
from bench.wrk import Load, parse_wrk, require_wrk, wrk_command

WARM_UP_SECONDS = 60


@dataclass(frozen=True)
class Sample:
    seconds: float
    rss_mb: float


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    headers: dict[str, str]
    body: str | None = None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument(
        "--pause-ms", type=int, default=20, help="each connection waits this long between calls"
    )
    parser.add_argument("--sample-seconds", type=float, default=5)
    parser.add_argument("--server", choices=SERVER_KINDS, default="uvicorn")
    args = parser.parse_args()
    require_wrk()
    load = Load(round(args.minutes * 60), args.connections, threads=2, timeout_seconds=30)

    with throwaway_database() as database_url, redis_prefix() as prefix:
        env = skilltree_env(database_url, prefix)
        prepare(env)
        with serve("skilltree", args.server, SKILLTREE_APP, env, factory=True) as app:
            session = asyncio.run(sign_in(app.base))
            script = mix_script(learner_calls(session), args.pause_ms)
            samples, output = soak(app, load, script, args.sample_seconds)
    result = parse_wrk("mix", output)
    print(f"\n## Soak: {args.minutes:g} min, {args.server}, {args.connections} connections\n")
    print_samples(samples)
    print()
    print(
        f"requests: {result.rps:.0f}/s, p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms, "
        f"failed {result.bad}"
    )
    print_memory(samples)


def learner_calls(s: Session) -> list[Call]:
    """The mix, in the proportions a learner's session has them: mostly reads, some writes."""
    bearer = {"Authorization": f"Bearer {s.bearer}"}
    json_body = bearer | {"Content-Type": "application/json"}
    progress = "/v1/me/progress/backend"
    return [
        Call("GET", "/v1/roadmaps/backend/tree", {}),
        Call("GET", "/v1/roadmaps/backend/tree", {"If-None-Match": s.etag}),
        Call("GET", f"/v1/roadmaps/backend/topics/{s.topic}", {}),
        Call("GET", progress, bearer),
        Call("GET", progress, {"Cookie": s.cookie}),
        Call("GET", f"{progress}/summary", bearer),
        Call("PUT", f"{progress}/{s.topic}", json_body, '{"status": "in_progress"}'),
        Call("GET", "/v1/me/reviews/due", bearer),
        Call("PUT", f"{progress}/{s.topic}", json_body, '{"status": "done"}'),
        Call("GET", f"{progress}/summary", bearer),
        Call("GET", "/livez", {}),
    ]


def mix_script(calls: list[Call], pause_ms: int) -> str:
    """wrk Lua that sends the calls in turn, each connection pausing between them."""
    entries = ",\n".join(
        "  {{{}, {}, {{{}}}, {}}}".format(
            _lua(call.method),
            _lua(call.path),
            ", ".join(f"[{_lua(key)}] = {_lua(value)}" for key, value in call.headers.items()),
            "nil" if call.body is None else _lua(call.body),
        )
        for call in calls
    )
    return f"""
local calls = {{
{entries}
}}
local n = 0
request = function()
  n = n % #calls + 1
  local call = calls[n]
  return wrk.format(call[1], call[2], call[3], call[4])
end
delay = function()
  return {pause_ms}
end
"""


def _lua(text: str) -> str:
    # A JSON string of ASCII text is also a valid Lua string literal.
    return json.dumps(text, ensure_ascii=True)


def soak(app: Server, load: Load, script: str, every: float) -> tuple[list[Sample], str]:
    """Run wrk for the whole duration while sampling the worker's memory."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        lua.write(script)
        lua.flush()
        command = wrk_command(app.base + "/", load, {}, lua.name)
        started = time.monotonic()
        with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as driver:
            samples = [Sample(0.0, app.rss_mb())]
            while driver.poll() is None:
                time.sleep(every)
                samples.append(Sample(time.monotonic() - started, app.rss_mb()))
            output = driver.stdout.read() if driver.stdout else ""
    if driver.returncode != 0:
        raise RuntimeError(f"wrk failed ({driver.returncode}):\n{output}")
    return samples, output


def slope_mb_per_minute(samples: list[Sample]) -> float:
    """Least-squares slope of memory over time, in MiB per minute (0 for fewer than 2)."""
    if len(samples) < 2:
        return 0.0
    mean_t = sum(s.seconds for s in samples) / len(samples)
    mean_m = sum(s.rss_mb for s in samples) / len(samples)
    covariance = sum((s.seconds - mean_t) * (s.rss_mb - mean_m) for s in samples)
    variance = sum((s.seconds - mean_t) ** 2 for s in samples)
    return 60 * covariance / variance if variance else 0.0


def after_warm_up(samples: list[Sample]) -> list[Sample]:
    return [s for s in samples if s.seconds >= WARM_UP_SECONDS]


def print_samples(samples: list[Sample]) -> None:
    """Memory once a minute (and the last sample), to see the shape of the curve."""
    shown, next_minute = [], 0.0
    for sample in samples:
        if sample.seconds >= next_minute:
            shown.append(sample)
            next_minute += 60
    if shown[-1] is not samples[-1]:
        shown.append(samples[-1])
    print("minute   RSS MiB")
    for sample in shown:
        print(f"{sample.seconds / 60:6.1f}   {sample.rss_mb:7.1f}")


def print_memory(samples: list[Sample]) -> None:
    peak = max(samples, key=lambda s: s.rss_mb)
    settled = after_warm_up(samples)
    print(
        f"RSS start {samples[0].rss_mb:.1f} MiB, peak {peak.rss_mb:.1f} MiB "
        f"(minute {peak.seconds / 60:.1f}), end {samples[-1].rss_mb:.1f} MiB"
    )
    print(
        f"slope {slope_mb_per_minute(samples):+.2f} MiB/min over the run, "
        f"{slope_mb_per_minute(settled):+.2f} MiB/min after the first minute "
        f"({len(samples)} samples)"
    )


if __name__ == "__main__":
    main()
