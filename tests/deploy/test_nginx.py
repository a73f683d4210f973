"""deploy/nginx/skilltree.conf is a configuration nginx accepts (`nginx -t`), with the settings
the deployment guide promises."""

from __future__ import annotations

import re
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from skilltree.platform.config import HttpSettings
from tests.support.live import base_environment, running_servers
from tests.support.nginx import SHIPPED, write_config
from tests.support.processes import free_port, require_program

# uvicorn closes a connection idle for this long unless told otherwise (`timeout_keep_alive`).
UVICORN_DEFAULT_KEEP_ALIVE_SECONDS = 5


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


def _directive_seconds(config: str, name: str) -> float:
    """The value of `name <N>s;` in the upstream block of an nginx configuration."""
    upstream = config[config.index("upstream skilltree {") :]
    found = re.search(rf"^\s*{name}\s+(\d+)s;", upstream, re.MULTILINE)
    assert found, f"{name} is not set in the upstream block"
    return float(found.group(1))


def test_an_instance_keeps_an_idle_connection_longer_than_nginx_reuses_it() -> None:
    # nginx sends a request on a connection it has kept idle for up to its upstream
    # keepalive_timeout. If the instance closes idle connections sooner, a request sent as the
    # instance closes one is reset: nginx answers it 502 or retries it, and counts the instance
    # as failed, so a healthy instance leaves the rotation (with another one restarting, every
    # instance at once). The instance must be the one that waits longer.
    nginx_keeps = _directive_seconds(SHIPPED.read_text(), "keepalive_timeout")

    assert HttpSettings().keep_alive_seconds > nginx_keeps


def test_a_served_instance_answers_on_a_connection_idle_for_longer_than_uvicorns_default(
    tmp_path: Path,
) -> None:
    env = base_environment(tmp_path) | {"SKILLTREE_HTTP_KEEP_ALIVE_SECONDS": "8"}
    with running_servers(env, tmp_path) as [server]:
        host, port = server.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as connection:
            first = _ask_for_livez(connection)
            time.sleep(UVICORN_DEFAULT_KEEP_ALIVE_SECONDS + 1)
            second = _ask_for_livez(connection)  # on the same connection, idle all that time

    assert first.startswith(b"HTTP/1.1 200 ")
    assert second.startswith(b"HTTP/1.1 200 ")


def _ask_for_livez(connection: socket.socket) -> bytes:
    """GET /livez on a kept-alive connection; the whole response (b"" if the server closed).

    The body is read to its Content-Length, so that nothing of this response is left
    in the socket to be mistaken for the start of the next one.
    """
    connection.sendall(b"GET /livez HTTP/1.1\r\nHost: skilltree\r\n\r\n")
    received = _receive_until(connection, lambda data: b"\r\n\r\n" in data, b"")
    if not received:
        return received
    head, _, _ = received.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?im)^content-length:\s*(\d+)", head)[1])  # type: ignore[index]
    whole = len(head) + len(b"\r\n\r\n") + length
    return _receive_until(connection, lambda data: len(data) >= whole, received)


def _receive_until(
    connection: socket.socket, done: Callable[[bytes], bool], received: bytes
) -> bytes:
    while not done(received):
        chunk = connection.recv(4096)
        if not chunk:
            break
        received += chunk
    return received
