"""Starting an ASGI app under uvicorn or granian, the same way for skilltree and the baselines.

Both servers run one worker with uvloop on loopback and write no access log of their own:
skilltree's access log is its own middleware (on stdout, which the benchmarks send to
/dev/null), so the server's would be a second one. What differs is what each server does per
request, which is what `make bench --server both` compares.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal, get_args

import httpx

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"

ServerKind = Literal["uvicorn", "granian"]
SERVER_KINDS: tuple[ServerKind, ...] = get_args(ServerKind)
STOP_GRACE_SECONDS = 30
# A worker imports skilltree and builds the app before it answers; on a busy machine that is slow.
STARTUP_SECONDS = 120


def server_command(
    kind: ServerKind,
    app: str,
    port: int,
    *,
    factory: bool,
    workers: int = 1,
    ws_deflate: bool = True,
) -> list[str]:
    """The command line that serves `app` ("module:attribute") on 127.0.0.1:`port`.
    `ws_deflate=False` turns permessage-deflate off, as `skilltree serve` does by default."""
    address = ["--host", "127.0.0.1", "--port", str(port)]
    if kind == "uvicorn":
        command = [str(BIN / "uvicorn"), app, *address, "--loop", "uvloop", "--http", "httptools"]
        command += ["--no-access-log", "--log-level", "warning"]
        command += ["--ws-per-message-deflate", str(ws_deflate).lower()]
        if workers > 1:
            command += ["--workers", str(workers)]
    else:
        command = [str(BIN / "granian"), app, *address, "--interface", "asgi", "--loop", "uvloop"]
        command += ["--workers", str(workers), "--no-access-log", "--log-level", "warning"]
    if factory:
        command.append("--factory")
    return command


@dataclass
class Server:
    name: str
    kind: ServerKind
    port: int
    process: subprocess.Popen[bytes]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def worker_pid(self) -> int:
        """The process that runs the app. uvicorn with one worker is that process; granian
        always runs its workers as children of a supervising process."""
        return self.worker_pids()[0]

    def worker_pids(self) -> list[int]:
        """Every process that runs the app (uvicorn with `--workers 2` runs two children)."""
        children = _children(self.process.pid)
        return app_processes({pid: _command_line(pid) for pid in children}) or [self.process.pid]

    def supervisor_pids(self) -> list[int]:
        """The processes of the server that run no app: the supervisor of several workers and
        its helpers (multiprocessing's resource tracker). None for one uvicorn worker."""
        workers = self.worker_pids()
        if workers == [self.process.pid]:
            return []
        return [self.process.pid, *(p for p in _children(self.process.pid) if p not in workers)]

    def rss_mb(self) -> float:
        return rss_mb(self.worker_pid())

    def cpu_seconds(self) -> float:
        """User + system CPU time the app's workers have used so far."""
        return sum(cpu_seconds(pid) for pid in self.worker_pids())


def rss_mb(pid: int) -> float:
    """Resident memory of one process, in MiB (NaN once it has exited)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return float("nan")
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    return int(match.group(1)) / 1024 if match else float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (NaN once it has exited)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return float("nan")
    # utime and stime are the 14th and 15th fields of /proc/PID/stat, in clock ticks.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_until_idle(pid: int, *, quiet_seconds: float = 1.0, timeout_seconds: float = 120) -> None:
    """Wait until the process has used (almost) no CPU for `quiet_seconds`: requests a load
    generator gave up on may still be running when it stops."""
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        before = cpu_seconds(pid)
        time.sleep(quiet_seconds)
        if not cpu_seconds(pid) - before > 0.05 * quiet_seconds:  # NaN (exited) ends it too
            return


# A child of uvicorn's supervisor that is not a worker: multiprocessing's "spawn" starts it
# before the first worker, so it is the first child (and was taken for the worker: its RSS and
# CPU reported as the worker's, the second worker's left out).
NOT_A_WORKER = ("multiprocessing.resource_tracker",)


def app_processes(children: dict[int, str]) -> list[int]:
    """Of a server's child processes (pid -> command line), those that run the app, by pid."""
    return sorted(
        pid
        for pid, command in children.items()
        if not any(marker in command for marker in NOT_A_WORKER)
    )


def _command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except FileNotFoundError:
        return ""


def _children(pid: int) -> list[int]:
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with suppress(FileNotFoundError):  # the thread ended since the listing
            children += [int(child) for child in (task / "children").read_text().split()]
    return children


@contextmanager
def serve(
    name: str,
    kind: ServerKind,
    app: str,
    env: dict[str, str],
    *,
    factory: bool = False,
    workers: int = 1,
    log_file: IO[bytes] | None = None,
    ws_deflate: bool = True,
) -> Iterator[Server]:
    """Run the app until the block ends, then stop it the way an orchestrator would (SIGTERM).
    With `log_file`, the server's stdout (skilltree's JSON log) and stderr (uvicorn's own
    errors, tracebacks) are kept there for the caller to read; else the log is discarded."""
    port = free_port()
    # A file rather than a pipe: a pipe nobody reads would block the server once full.
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(
            server_command(
                kind, app, port, factory=factory, workers=workers, ws_deflate=ws_deflate
            ),
            cwd=ROOT,
            env=os.environ | env,
            stdout=log_file if log_file is not None else subprocess.DEVNULL,
            stderr=log_file if log_file is not None else errors,
            start_new_session=True,  # its own process group: see _stop
        )
        server = Server(name, kind, port, process)
        try:
            _wait_until_up(server, log_file if log_file is not None else errors)
            if workers > 1:  # the first worker answers; wait for the others to be ready too
                deadline = time.monotonic() + STARTUP_SECONDS
                while len(server.worker_pids()) < workers and time.monotonic() < deadline:
                    time.sleep(0.1)
                for pid in server.worker_pids():
                    wait_until_idle(pid)
            yield server
        finally:
            _stop(server)


def _stop(server: Server) -> None:
    """SIGTERM, as an orchestrator sends it; a server whose processes are still there after
    the grace period is reported and killed with its workers, so no run leaves one behind."""
    server.process.terminate()
    try:
        server.process.wait(timeout=STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        print(
            f"warning: {server.name} ({server.kind}) did not stop within "
            f"{STOP_GRACE_SECONDS} s of SIGTERM; killed",
            file=sys.stderr,
        )
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait()


def _wait_until_up(server: Server, errors: IO[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            errors.seek(0)
            message = errors.read().decode(errors="replace")
            raise RuntimeError(f"{server.name} ({server.kind}) exited: {message}")
        try:
            # Any answer will do (the baselines answer 404). Not `/`: skilltree's is the web
            # app's home page, and its templates would then count in every memory figure.
            httpx.get(server.base + "/livez", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{server.name} ({server.kind}) did not start within {STARTUP_SECONDS} s")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
