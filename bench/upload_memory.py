"""`python -m bench.upload_memory`: does a worker's memory stay flat while a large file uploads?

Serves skilltree (SQLite, local disk storage) in a process of its own, uploads a small file
and then a large one (default 20 MiB and 200 MiB) as one multipart body streamed from a
generator, and samples the server's resident memory (VmRSS) every 20 ms during each upload.
Memory is flat when the peak growth during the large upload is about the same as during the
small one, ten times smaller: it does not grow with the file.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from bench.servers import BIN
from bench.stage import EMAIL, PASSWORD

MIB = 1024 * 1024
LINE = b"a line of notes about backpressure and streaming bodies\n"
BOUNDARY = "skilltree-bench-boundary"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


async def body(size: int) -> AsyncIterator[bytes]:
    yield (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\n'
        "Content-Type: text/plain\r\n\r\n"
    ).encode()
    chunk = LINE * (256 * 1024 // len(LINE))
    sent = 0
    while sent < size:
        piece = chunk[: size - sent]
        sent += len(piece)
        yield piece
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


async def upload(base: str, token: str, size: int, pid: int) -> tuple[int, float]:
    """Upload `size` bytes; return the peak RSS seen meanwhile and the seconds it took."""
    peak = rss_bytes(pid)
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_bytes(pid))
            await asyncio.sleep(0.02)

    sampler = asyncio.create_task(sample())
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=base, timeout=600) as client:
        response = await client.post(
            "/v1/me/progress/backend/file-uploads/note/attachments",
            content=body(size),
            headers={
                "authorization": f"Bearer {token}",
                "content-type": f"multipart/form-data; boundary={BOUNDARY}",
            },
        )
    elapsed = time.perf_counter() - started
    done.set()
    await sampler
    if response.status_code != 201:
        raise RuntimeError(f"upload failed: {response.status_code} {response.text[:300]}")
    return peak, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small-mib", type=int, default=20)
    parser.add_argument("--large-mib", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        env = os.environ | {
            "SKILLTREE_DATABASE_URL": f"sqlite+aiosqlite:///{workdir}/bench.db",
            "SKILLTREE_FILES_STORAGE_DIR": f"{workdir}/files",
            "SKILLTREE_FILES_ATTACHMENT_MAX_BYTES": str((args.large_mib + 1) * MIB),
            "SKILLTREE_FILES_QUOTA_BYTES": str(4 * (args.large_mib + args.small_mib) * MIB),
            "SKILLTREE_RATE_LIMIT_ENABLED": "false",
            "SKILLTREE_LOG_LEVEL": "WARNING",
        }
        password_file = Path(workdir) / "password"
        password_file.write_text(PASSWORD)
        for command in (
            ["migrate", "upgrade"],
            ["roadmap", "load-builtin"],
            ["user", "create", EMAIL, "--name", "Bench", "--password-file", str(password_file)],
        ):
            subprocess.run([str(BIN / "skilltree"), *command], env=env, check=True,
                           capture_output=True)  # fmt: skip
        port = free_port()
        server = subprocess.Popen(
            [str(BIN / "skilltree"), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(200):
                try:
                    httpx.get(f"{base}/livez", timeout=1).raise_for_status()
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
            token = httpx.post(
                f"{base}/v1/auth/token", json={"email": EMAIL, "password": PASSWORD}
            ).json()["access_token"]
            asyncio.run(upload(base, token, 1 * MIB, server.pid))  # warm up
            before = rss_bytes(server.pid)
            small_peak, small_s = asyncio.run(upload(base, token, args.small_mib * MIB, server.pid))
            large_peak, large_s = asyncio.run(upload(base, token, args.large_mib * MIB, server.pid))
        finally:
            server.terminate()
            server.wait(timeout=30)
    small_growth = (small_peak - before) / MIB
    large_growth = (large_peak - before) / MIB
    print(f"worker RSS before the uploads: {before / MIB:.1f} MiB")
    print(f"{args.small_mib:>4} MiB upload: peak +{small_growth:.1f} MiB, {small_s:.1f} s")
    print(f"{args.large_mib:>4} MiB upload: peak +{large_growth:.1f} MiB, {large_s:.1f} s")
    # Flat: the larger upload grows the worker by no more than the smaller one (plus 1 MiB of
    # sampling noise), though its file is ten times the size.
    verdict = "flat" if large_growth <= small_growth + 1 else "GROWS WITH THE FILE"
    print(f"memory during the larger upload: {verdict}")


if __name__ == "__main__":
    main()
