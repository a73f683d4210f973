"""deploy/nginx/skilltree.conf, run by a throwaway nginx on loopback: the shipped server block
with only its paths, port and upstream list replaced."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "deploy" / "nginx" / "skilltree.conf"


def write_config(
    directory: Path, *, port: int, upstreams: list[str], fail_timeout_seconds: int = 10
) -> Path:
    """A complete nginx.conf in `directory` around the shipped server block; returns its path."""
    directory.mkdir(parents=True, exist_ok=True)
    upstream_file = directory / "upstreams.conf"
    upstream_file.write_text(
        "".join(
            f"server {address} max_fails=2 fail_timeout={fail_timeout_seconds}s;\n"
            for address in upstreams
        )
    )
    server_block = (
        SHIPPED.read_text()
        .replace("/etc/nginx/skilltree-upstreams.conf", str(upstream_file))
        .replace("/var/log/nginx/skilltree.access.log", str(directory / "access.log"))
        .replace("listen 80;", f"listen 127.0.0.1:{port};")
    )
    assert f"127.0.0.1:{port}" in server_block, "the shipped config no longer says `listen 80;`"
    (directory / "skilltree.conf").write_text(server_block)
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp_paths = "".join(
        f"    {kind}_temp_path {directory / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    main = directory / "nginx.conf"
    main.write_text(
        f"{user}worker_processes 1;\n"
        f"pid {directory / 'nginx.pid'};\n"
        f"error_log {directory / 'error.log'} warn;\n"
        "events { worker_connections 512; }\n"
        "http {\n"
        f"    access_log off;\n{temp_paths}"
        f"    include {directory / 'skilltree.conf'};\n"
        "}\n"
    )
    return main
