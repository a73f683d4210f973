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


# IPv6 forms that carry an IPv4 address in their last 32 bits: NAT64's well-known prefix (RFC
# 6052), which a NAT64 gateway translates to that IPv4 address, and the deprecated
# IPv4-compatible form (RFC 4291 §2.5.5.1), which some stacks still route as IPv4. Python calls
# both global whatever they embed.
LAST_32_BITS_EMBED_IPV4 = (
    ipaddress.IPv6Network("64:ff9b::/96"),
    ipaddress.IPv6Network("::/96"),
)
# NAT64 for an operator's own networks (RFC 8215): never a public destination.
NAT64_LOCAL_USE = ipaddress.IPv6Network("64:ff9b:1::/48")


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, 6to4, Teredo, NAT64, compatible)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]  # (server, client): the client is where traffic goes
    if any(address in network for network in LAST_32_BITS_EMBED_IPV4):
        return ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
    return None


def is_forbidden(address: IpAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        if address in NAT64_LOCAL_USE:
            return True
        embedded = embedded_ipv4(address)
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
