"""The SSRF guard: a webhook URL may only lead to the public internet.

An owner types the URL, so it may point at the service's own network: the cloud metadata
endpoint (169.254.169.254), a database on 10.0.0.5, an admin port on localhost. The guard
resolves the host itself, refuses if *any* address is not globally routable (loopback, private,
link-local — which holds the metadata addresses —, multicast, reserved, shared, unspecified,
and IPv4 hidden in IPv6), and returns the address to connect to: the delivery connects to that
very address (pinned), so a DNS answer that changes between check and connection (DNS
rebinding) cannot redirect it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from skilltree.platform.errors import UnprocessableContent

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class ForbiddenDestination(UnprocessableContent):
    type_slug = "webhook-destination-forbidden"
    title = "Webhook destination forbidden"


@dataclass(frozen=True)
class Destination:
    scheme: str
    host: str
    port: int
    address: str  # the resolved, checked IP the connection goes to
    path: str  # path and query, as given


def is_forbidden(address: IpAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or address.teredo
        if isinstance(embedded, tuple):  # teredo: (server, client)
            embedded = embedded[1]
        if embedded is not None and is_forbidden(embedded):
            return True
    return address.is_multicast or not address.is_global


def split_url(url: str, *, allow_http: bool) -> tuple[str, str, int, str]:
    parts = urlsplit(url)
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes:
        raise ForbiddenDestination("The webhook URL must use https.")
    if not parts.hostname or parts.username or parts.password:
        raise ForbiddenDestination("The webhook URL needs a host and no credentials.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as error:
        raise ForbiddenDestination("The webhook URL has an invalid port.") from error
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return parts.scheme, parts.hostname, port, path


async def resolve(url: str, *, allow_private: bool, allow_http: bool) -> Destination:
    """Check the URL and resolve its host; raise ForbiddenDestination if it may not be called."""
    scheme, host, port, path = split_url(url, allow_http=allow_http)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as error:
        raise ForbiddenDestination(f"The host {host!r} does not resolve.") from error
    addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    if not addresses:
        raise ForbiddenDestination(f"The host {host!r} does not resolve.")
    if not allow_private:
        for address in addresses:
            if is_forbidden(address):
                raise ForbiddenDestination(
                    f"The host {host!r} resolves to {address}, which is not a public address."
                )
    return Destination(scheme, host, port, str(addresses[0]), path)
