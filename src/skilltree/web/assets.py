"""Static assets shipped inside the package, served under names that carry their content hash.

A name changes whenever the bytes do, so a response may be cached for a year (`immutable`): a
new release links new names and no browser ever runs yesterday's script against today's page.
The manifest is built once per process from the files in `static/` plus the Pygments
stylesheet, which is generated rather than committed so it always matches the installed
Pygments.
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from functools import cache
from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
ONE_YEAR = 365 * 24 * 3600
IMMUTABLE = f"public, max-age={ONE_YEAR}, immutable"
HASH_CHARS = 12


@dataclass(frozen=True)
class Asset:
    name: str  # as templates ask for it: "app.css"
    hashed_name: str  # as it is served: "app.3f2a9c0d1b7e.css"
    body: bytes
    media_type: str

    @property
    def url(self) -> str:
        return f"/assets/{self.hashed_name}"


@dataclass(frozen=True)
class Manifest:
    by_name: dict[str, Asset]
    by_hashed_name: dict[str, Asset]

    def url(self, name: str) -> str:
        return self.by_name[name].url


def hashed(name: str, body: bytes) -> str:
    stem, dot, suffix = name.rpartition(".")
    digest = hashlib.sha256(body).hexdigest()[:HASH_CHARS]
    return f"{stem}.{digest}.{suffix}" if dot else f"{name}.{digest}"


def _asset(name: str, body: bytes) -> Asset:
    media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if media_type.startswith("text/") or media_type.endswith(("javascript", "svg+xml")):
        media_type += "; charset=utf-8"
    return Asset(name, hashed(name, body), body, media_type)


@cache
def manifest() -> Manifest:
    """Every asset, read and hashed once per process."""
    from skilltree.web.code import stylesheet  # Pygments loads with the web app only

    files = {
        path.name: path.read_bytes() for path in sorted(STATIC_DIR.iterdir()) if path.is_file()
    }
    files["code.css"] = stylesheet().encode()
    assets = [_asset(name, body) for name, body in files.items()]
    return Manifest({a.name: a for a in assets}, {a.hashed_name: a for a in assets})
