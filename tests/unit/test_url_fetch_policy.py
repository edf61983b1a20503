"""The URL-fetch address policy and allow-list, as pure functions: no socket is opened here.

Every range the gateway refuses to connect to is one row, so a regression in the classification
(or in the standard library's tables it rests on) names the range that slipped.
"""

from __future__ import annotations

import ipaddress

import pytest

from bedrock_mw.config import GatewayConfig
from bedrock_mw.media import FetchRules, parse_ip_literal, public_unicast

REFUSED = [
    ("0.0.0.0", "unspecified IPv4"),
    ("0.1.2.3", "this network 0/8"),
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback, end of 127/8"),
    ("10.0.0.1", "private 10/8"),
    ("172.16.0.1", "private 172.16/12"),
    ("172.31.255.254", "private 172.16/12, end"),
    ("192.168.1.1", "private 192.168/16"),
    ("100.64.0.1", "carrier-grade NAT 100.64/10"),
    ("169.254.169.254", "link-local, the EC2 instance metadata endpoint"),
    ("192.0.0.8", "IETF protocol assignments 192.0.0/24"),
    ("192.0.2.1", "documentation TEST-NET-1"),
    ("198.18.0.1", "benchmarking 198.18/15"),
    ("198.51.100.1", "documentation TEST-NET-2"),
    ("203.0.113.1", "documentation TEST-NET-3"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast, SSDP"),
    ("240.0.0.1", "reserved 240/4"),
    ("255.255.255.255", "broadcast"),
    ("::", "unspecified IPv6"),
    ("::1", "loopback IPv6"),
    ("fe80::1", "link-local IPv6"),
    ("fec0::1", "site-local IPv6 (deprecated)"),
    ("fc00::1", "unique local fc00::/7"),
    ("fd00:ec2::254", "unique local, the EC2 IPv6 metadata endpoint"),
    ("ff02::1", "multicast IPv6"),
    ("2001:db8::1", "documentation IPv6"),
    ("100::1", "discard-only 100::/64"),
    ("64:ff9b:1::a00:1", "local-use NAT64 64:ff9b:1::/48"),
    ("::ffff:127.0.0.1", "IPv4-mapped loopback"),
    ("::ffff:169.254.169.254", "IPv4-mapped link-local"),
    ("::ffff:10.0.0.1", "IPv4-mapped private"),
    ("::ffff:0.0.0.0", "IPv4-mapped unspecified"),
    ("::127.0.0.1", "IPv4-compatible loopback"),
    ("::10.0.0.1", "IPv4-compatible private"),
    ("2002:7f00:1::", "6to4 wrapping loopback"),
    ("2002:a00:1::", "6to4 wrapping private"),
    ("64:ff9b::a9fe:a9fe", "NAT64 wrapping link-local"),
    ("64:ff9b::7f00:1", "NAT64 wrapping loopback"),
]

PUBLIC = ["8.8.8.8", "1.1.1.1", "93.184.215.14", "2606:4700:4700::1111", "2a00:1450:4001:82a::200e"]


@pytest.mark.parametrize(("address", "why"), REFUSED, ids=[why for _, why in REFUSED])
def test_the_default_policy_refuses_every_non_public_range(address: str, why: str) -> None:
    assert public_unicast(ipaddress.ip_address(address)) is False, why


@pytest.mark.parametrize("address", PUBLIC)
def test_the_default_policy_admits_public_unicast_addresses(address: str) -> None:
    assert public_unicast(ipaddress.ip_address(address)) is True


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("[::1]", "::1"),
        ("::1", "::1"),
        ("[::ffff:127.0.0.1]", "::ffff:7f00:1"),
        ("[fe80::1%eth0]", "fe80::1"),
        ("0.0.0.0", "0.0.0.0"),
    ],
)
def test_ip_literals_in_url_hosts_are_recognised(host: str, expected: str) -> None:
    assert parse_ip_literal(host) == ipaddress.ip_address(expected)


@pytest.mark.parametrize("host", ["localhost", "example.com", "0x7f000001", "2130706433", "127.1"])
def test_names_and_odd_numeric_spellings_are_left_to_the_checked_resolver(host: str) -> None:
    # inet_aton-style spellings are not literals to ipaddress; getaddrinfo turns them into an
    # address, which the resolver then checks (the e2e tests send them through it).
    assert parse_ip_literal(host) is None


def rules(hosts: list[str] | None) -> FetchRules:
    cfg = GatewayConfig.model_validate({"allow_url_fetch": True, "url_fetch_allowed_hosts": hosts})
    return FetchRules.from_config(cfg)


def test_no_allow_list_admits_every_host_name() -> None:
    assert rules(None).host_allowed("anything.example")


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("images.example.com", True),
        ("IMAGES.Example.COM.", True),
        ("cdn.example.org", True),
        ("a.b.cdn.example.org", True),
        ("example.org", False),
        ("evil-example.org", False),
        ("images.example.com.evil.net", False),
        ("other.example.com", False),
    ],
)
def test_the_allow_list_matches_exact_names_and_star_dot_subdomains(host: str, allowed: bool) -> None:
    assert rules(["images.example.com", "*.example.org"]).host_allowed(host) is allowed


def test_rules_take_their_caps_from_the_config() -> None:
    cfg = GatewayConfig.model_validate(
        {"url_fetch_max_urls": 3, "url_fetch_max_total_bytes": 5000, "limits": {"max_body_bytes": 2048}}
    )
    found = FetchRules.from_config(cfg)
    assert (found.max_urls, found.max_total_bytes, found.max_bytes) == (3, 5000, 2048)
    assert found.policy is public_unicast
