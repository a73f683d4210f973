"""Driving an endpoint with wrk and reading its report."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Load:
    seconds: int = 10
    connections: int = 64
    threads: int = 2
    # wrk counts a request unanswered after this long as a timeout (a failure) and stops
    # waiting for it, so its latency never enters the figures: longer than any answer.
    timeout_seconds: int = 2


@dataclass
class Result:
    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    bad: int  # responses that were not 2xx or 3xx, and requests that got no response
    requests: int = 0  # responses received in the run
    seconds: float = 0.0  # how long the run took, as wrk reports it
    ratios: dict[str, float] = field(default_factory=dict)
    # CPU seconds used during the run, by name: the app's workers, PostgreSQL's backends
    cpu: dict[str, float] = field(default_factory=dict)

    def cpu_ms_per_request(self, name: str) -> float:
        """CPU time `name` used per response, in milliseconds (NaN when not measured)."""
        if name not in self.cpu or not self.requests:
            return float("nan")
        return self.cpu[name] / self.requests * 1000


def wrk(
    name: str, url: str, load: Load, headers: dict[str, str] | None = None, script: str = ""
) -> Result:
    """Drive `url` for `load.seconds` and return the figures; `script` is wrk Lua (methods,
    bodies)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        lua.write(script)
        lua.flush()
        command = wrk_command(url, load, headers or {}, lua.name)
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return parse_wrk(name, output)


def wrk_command(url: str, load: Load, headers: dict[str, str], lua_path: str) -> list[str]:
    command = ["wrk", f"-t{load.threads}", f"-c{load.connections}", f"-d{load.seconds}s"]
    command += [f"--timeout={load.timeout_seconds}s", "--latency"]
    for key, value in headers.items():
        command += ["-H", f"{key}: {value}"]
    return [*command, "-s", lua_path, url]


def parse_wrk(name: str, output: str) -> Result:
    """The figures of one `wrk --latency` run."""
    return Result(
        name=name,
        rps=float(_find(r"Requests/sec:\s+([\d.]+)", output)),
        p50_ms=latency_ms(_find(r"\s50%\s+([\d.]+\w+)", output)),
        p99_ms=latency_ms(_find(r"\s99%\s+([\d.]+\w+)", output)),
        bad=int(_find(r"Non-2xx or 3xx responses: (\d+)", output, default="0"))
        + sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output)),
        requests=int(_find(r"(\d+) requests in", output)),
        seconds=latency_ms(_find(r"requests in ([\d.]+\w+),", output)) / 1000,
    )


def _find(pattern: str, text: str, default: str | None = None) -> str:
    match = re.search(pattern, text)
    if match:
        return match.group(1)
    if default is not None:
        return default
    raise RuntimeError(f"wrk output without {pattern!r}:\n{text}")


def latency_ms(value: str) -> float:
    """wrk's "812.00us", "3.91ms", "1.02s" or "1.50m", in milliseconds."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    if match is None:
        raise ValueError(f"not a wrk latency: {value!r}")
    number, unit = match.groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def require_wrk() -> None:
    """Exit saying how to install wrk when it is missing: every load benchmark drives it."""
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: `apt-get install wrk` (make bench does it when root)")
