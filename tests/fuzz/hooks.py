"""schemathesis hooks for tests/fuzz/test_schemathesis.py (loaded through SCHEMATHESIS_HOOKS).

An Idempotency-Key names one request: the client makes a new one for every new request, and
the server answers a key sent again with another body with 422 idempotency-key-reused (RFC
draft "The Idempotency-Key HTTP Header Field", tests/platform/test_idempotency.py). Generated
keys repeat across test cases ("0", "null"), so every generated key gets a suffix of its own:
the run then tests what a client does, and a replay test stays where replays are tested.
"""

from __future__ import annotations

import itertools
from typing import Any

import schemathesis

_numbers = itertools.count(1)


@schemathesis.hook
def map_headers(context: Any, headers: dict[str, str] | None) -> dict[str, str] | None:
    if not headers:
        return headers
    for name in list(headers):
        if name.lower() == "idempotency-key":
            # At most 255 characters, like the keys the schema allows.
            headers[name] = f"{headers[name][:240]}-{next(_numbers)}"
    return headers


# A tus PATCH carries raw bytes as `application/offset+octet-stream` (docs/files.md): the
# fuzzer sends them the way it sends any `application/octet-stream` body.
schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")
