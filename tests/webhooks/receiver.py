"""A real HTTP receiver on loopback that verifies Standard Webhooks signatures, as a customer's
endpoint would (the verification code is the one docs/background-work.md shows)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class Receiver:
    port: int
    secret: str = ""
    status: int = 200
    reply: bytes = b'{"ok": true}'
    redirect_to: str | None = None
    received: list[dict[str, object]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/skilltree"


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    state = Receiver(port=0)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {name.lower(): value for name, value in self.headers.items()}
            try:
                payload = Webhook(state.secret).verify(body, headers)
                verified = True
            except WebhookVerificationError:
                payload, verified = None, False
            state.received.append({"headers": headers, "payload": payload, "verified": verified})
            if state.redirect_to is not None:
                self.send_response(302)
                self.send_header("location", state.redirect_to)
                self.end_headers()
                return
            self.send_response(state.status)
            self.send_header("content-length", str(len(state.reply)))
            self.end_headers()
            self.wfile.write(state.reply)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
