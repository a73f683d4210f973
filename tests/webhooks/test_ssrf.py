"""The SSRF guard refuses every address that is not on the public internet."""

from __future__ import annotations

import ipaddress

import pytest

from skilltree.webhooks.ssrf import ForbiddenDestination, is_forbidden, resolve

FORBIDDEN = {
    "loopback": "127.0.0.1",
    "loopback (other)": "127.45.6.7",
    "loopback v6": "::1",
    "private 10/8": "10.1.2.3",
    "private 172.16/12": "172.16.0.1",
    "private 192.168/16": "192.168.1.1",
    "private v6 (ULA, where AWS's fd00:ec2::254 lives)": "fd00:ec2::254",
    "link-local (cloud metadata)": "169.254.169.254",
    "link-local v6": "fe80::1",
    "multicast": "224.0.0.1",
    "multicast v6": "ff02::1",
    "shared address space (Alibaba metadata)": "100.100.100.200",
    "unspecified": "0.0.0.0",  # noqa: S104  (refused, not bound)
    "unspecified v6": "::",
    "reserved": "240.0.0.1",
    "broadcast": "255.255.255.255",
    "benchmarking": "198.18.0.1",
    "documentation": "192.0.2.10",
    "IPv4-mapped loopback": "::ffff:127.0.0.1",
    "IPv4-mapped metadata": "::ffff:169.254.169.254",
    "6to4 of a private address": "2002:0a00:0001::1",
    "NAT64 of loopback": "64:ff9b::7f00:1",
    "NAT64 of the metadata address": "64:ff9b::a9fe:a9fe",
    "NAT64 local-use prefix": "64:ff9b:1::a00:1",
    "IPv4-compatible loopback": "::7f00:1",
    "IPv4-compatible metadata": "::a9fe:a9fe",
    "Teredo of a private client": "2001:0:4136:e378:8000:63bf:f5ff:fffe",
    "6to4 of loopback": "2002:7f00:1::1",
}


@pytest.mark.parametrize("address", FORBIDDEN.values(), ids=FORBIDDEN.keys())
def test_non_public_addresses_are_forbidden(address: str) -> None:
    assert is_forbidden(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address", ["93.184.215.14", "2606:4700:4700::1111", "8.8.8.8", "64:ff9b::808:808"]
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert not is_forbidden(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://[::1]:8443/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://10.0.0.5/",
        "https://[::ffff:127.0.0.1]/",
    ],
)
async def test_urls_leading_inside_are_refused_after_resolution(url: str) -> None:
    with pytest.raises(ForbiddenDestination, match="not a public address"):
        await resolve(url, allow_private=False, allow_http=False)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://8.8.8.8/hook", "https"),
        ("ftp://8.8.8.8/hook", "https"),
        ("https://user:pw@8.8.8.8/", "credentials"),
        ("https:///nohost", "host"),
        ("https://8.8.8.8:99999/", "port"),
        ("https://no-such-host.invalid/", "does not resolve"),
    ],
)
async def test_malformed_or_unresolvable_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(ForbiddenDestination, match=message):
        await resolve(url, allow_private=False, allow_http=False)


async def test_a_public_address_resolves_to_itself_for_pinning() -> None:
    destination = await resolve("https://8.8.8.8/hook?x=1", allow_private=False, allow_http=False)

    assert (destination.address, destination.port, destination.path) == (
        "8.8.8.8",
        443,
        "/hook?x=1",
    )


async def test_the_explicit_setting_admits_loopback_for_tests() -> None:
    destination = await resolve("http://127.0.0.1:9/hook", allow_private=True, allow_http=True)

    assert destination.address == "127.0.0.1"
