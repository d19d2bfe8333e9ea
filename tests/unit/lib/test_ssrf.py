"""The SSRF guard's pure parts: URL shape, address classes, the operator allow-list, metadata."""

from __future__ import annotations

import ipaddress

import pytest

from app.lib.ssrf import UnsafeTargetError, address_problem, check_addresses, parse_networks, parse_target


def ip(value: str):
    return ipaddress.ip_address(value)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fd12:3456::1", "private"),
        ("169.254.1.1", "link_local"),
        ("fe80::1", "link_local"),
        ("169.254.169.254", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("100.100.100.200", "metadata"),
        ("100.64.0.1", "reserved"),  # shared address space (CGNAT)
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped IPv6 is judged as the IPv4 inside
        ("::ffff:10.0.0.1", "private"),
        ("2002:0a00:0001::1", "private"),  # 6to4 wrapping 10.0.0.1
        ("64:ff9b::a9fe:a9fe", "metadata"),  # NAT64 of 169.254.169.254
    ],
)
def test_internal_addresses_are_refused(address, reason):
    assert address_problem(ip(address)) == reason


@pytest.mark.parametrize("address", ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_pass(address):
    assert address_problem(ip(address)) is None


def test_operator_allow_list_admits_private_networks_but_never_metadata():
    allowed = parse_networks("10.0.0.0/8, 192.168.5.0/24 169.254.0.0/16")
    assert address_problem(ip("10.9.9.9"), allowed) is None
    assert address_problem(ip("192.168.5.7"), allowed) is None
    assert address_problem(ip("192.168.6.7"), allowed) == "private"
    assert address_problem(ip("169.254.169.254"), allowed) == "metadata"


def test_development_allows_loopback_only():
    dev = parse_networks("", development=True)
    assert address_problem(ip("127.0.0.1"), dev) is None
    assert address_problem(ip("::1"), dev) is None
    assert address_problem(ip("10.0.0.1"), dev) == "private"
    assert address_problem(ip("127.0.0.1"), parse_networks("")) == "loopback"


def test_bad_allow_list_is_an_error():
    with pytest.raises(ValueError, match="not a CIDR"):
        parse_networks("10.0.0.0/8, nonsense")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/x", "invalid_url"),
        ("file:///etc/passwd", "invalid_url"),
        ("gopher://example.com", "invalid_url"),
        ("http://user:pass@example.com/hook", "invalid_url"),
        ("http:///nohost", "invalid_url"),
        ("http://example.com:99999/", "invalid_url"),
        ("http://metadata.google.internal/computeMetadata/v1/", "metadata"),
        ("https://example.com/" + "a" * 2100, "invalid_url"),
        ("http://>\u0095\u00da/x", "invalid_url"),
        ("http://exa mple.com/x", "invalid_url"),
    ],
)
def test_malformed_or_forbidden_urls(url, reason):
    with pytest.raises(UnsafeTargetError) as info:
        parse_target(url)
    assert info.value.reason == reason


def test_target_parts_and_https_requirement():
    t = parse_target("https://Hooks.Example.com./in?x=1")
    assert (t.scheme, t.host, t.port, t.path) == ("https", "hooks.example.com", 443, "/in?x=1")
    assert parse_target("http://[::1]:8080").host == "::1"
    assert parse_target("http://example.com").path == "/"
    assert parse_target("https://bücher.example/hook").host == "xn--bcher-kva.example"
    with pytest.raises(UnsafeTargetError) as info:
        parse_target("http://example.com/hook", require_https=True)
    assert info.value.reason == "https_required"


def test_any_unsafe_address_refuses_the_host():
    """An attacker picks which A record gets used: one internal answer among public ones is enough."""
    with pytest.raises(UnsafeTargetError) as info:
        check_addresses("evil.example", [ip("93.184.216.34"), ip("10.0.0.5")])
    assert info.value.reason == "private" and "10.0.0.5" in info.value.detail
    with pytest.raises(UnsafeTargetError) as info:
        check_addresses("nowhere.example", [])
    assert info.value.reason == "unresolvable"
    assert check_addresses("ok.example", [ip("93.184.216.34")] * 2) == [ip("93.184.216.34")]
