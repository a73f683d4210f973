"""Retiring an endpoint politely: Deprecation (RFC 9745), Sunset (RFC 8594) and a successor link.

A deprecated endpoint keeps working until its sunset; every response says since when it is
deprecated, when it will stop answering, and where its replacement is (RFC 8288
rel="successor-version"), so clients and API gateways can warn long before anything breaks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

from starlette.responses import Response


@dataclass(frozen=True)
class Deprecation:
    since: datetime
    sunset: datetime

    def apply(self, response: Response, successor: str) -> Response:
        # RFC 9745 §2.1: a structured-field Date, "@" followed by seconds since the epoch.
        response.headers["deprecation"] = f"@{int(self.since.timestamp())}"
        # RFC 8594 §3: an HTTP-date.
        response.headers["sunset"] = format_datetime(self.sunset, usegmt=True)
        response.headers.append("link", f'<{successor}>; rel="successor-version"')
        return response
