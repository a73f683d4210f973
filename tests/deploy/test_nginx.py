"""deploy/nginx/skilltree.conf is a configuration nginx accepts (`nginx -t`), with the settings
the deployment guide promises."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.nginx import SHIPPED, write_config
from tests.support.processes import free_port, require_program


def test_nginx_accepts_the_shipped_configuration(tmp_path: Path) -> None:
    nginx = require_program("nginx", "nginx")
    config = write_config(tmp_path, port=free_port(), upstreams=["127.0.0.1:1", "127.0.0.1:2"])

    done = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert "test is successful" in done.stderr


def test_the_configuration_balances_keeps_alive_and_streams() -> None:
    config = SHIPPED.read_text()

    for directive in (
        "least_conn;",
        "keepalive 32;",
        "proxy_set_header Connection $skilltree_connection;",
        "proxy_set_header Upgrade $http_upgrade;",
        "proxy_buffering off;",
        "real_ip_header X-Forwarded-For;",
        "proxy_set_header X-Forwarded-For $remote_addr;",
        "proxy_set_header X-Request-ID $skilltree_request_id;",
        "proxy_next_upstream error timeout http_502 http_503;",
    ):
        assert directive in config
    assert "non_idempotent" not in config  # a POST is never sent twice
