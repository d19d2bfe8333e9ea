"""Server-side request forgery guard for outgoing webhooks (pure: no I/O; callers resolve names).

A target is refused when any address its host resolves to is not globally routable — loopback, private,
link-local, shared (CGNAT), multicast, reserved, unspecified — unless an operator-allowed network contains
it. Cloud metadata addresses are refused even then: no legitimate webhook receiver lives there.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, DigitalOcean, OpenStack
        "169.254.170.2",  # AWS ECS task metadata
        "fd00:ec2::254",  # AWS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
    )
)
METADATA_HOSTNAMES = frozenset({"metadata", "metadata.google.internal", "metadata.goog", "instance-data"})
DEVELOPMENT_NETWORKS = ("127.0.0.0/8", "::1/128")
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,62})(?:\.[a-z0-9_](?:[a-z0-9_-]{0,62}))*$")
MAX_URL_LENGTH = 2000


class UnsafeTargetError(ValueError):
    """The URL or an address it resolves to may not receive webhooks; ``reason`` is a stable code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Target:
    scheme: str
    host: str  # lower-case, without brackets for IPv6 literals
    port: int
    path: str  # path + query, never empty


def parse_networks(spec: str, *, development: bool = False) -> tuple[IPNetwork, ...]:
    """The operator's allow-list (comma- or space-separated CIDRs); development adds loopback."""
    items = [s for s in spec.replace(",", " ").split() if s]
    if development:
        items.extend(DEVELOPMENT_NETWORKS)
    networks: list[IPNetwork] = []
    for item in items:
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError as exc:
            raise ValueError(f"not a CIDR network: {item!r}") from exc
    return tuple(networks)


def parse_target(url: str, *, require_https: bool = False) -> Target:
    """Validate the URL's shape (scheme, host, no credentials) before any name is resolved."""
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeTargetError("invalid_url", f"The URL is longer than {MAX_URL_LENGTH} characters.")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise UnsafeTargetError("invalid_url", "The URL is not valid.") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UnsafeTargetError("invalid_url", "Only http and https URLs can receive webhooks.")
    if require_https and scheme != "https":
        raise UnsafeTargetError("https_required", "Webhook URLs must use https.")
    if parts.username is not None or parts.password is not None:
        raise UnsafeTargetError("invalid_url", "Credentials in the URL are not supported; use the signature.")
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        raise UnsafeTargetError("invalid_url", "The URL has no host.")
    if literal_address(host) is None:
        try:
            host = host.encode("idna").decode("ascii")  # internationalised names become their xn-- form
        except UnicodeError as exc:
            raise UnsafeTargetError("invalid_url", "The URL's host is not a valid name.") from exc
        if not _HOSTNAME.match(host):
            raise UnsafeTargetError("invalid_url", "The URL's host is not a valid name.")
    if host in METADATA_HOSTNAMES:
        raise UnsafeTargetError("metadata", "Cloud metadata endpoints cannot receive webhooks.")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return Target(scheme=scheme, host=host, port=port or (443 if scheme == "https" else 80), path=path)


def literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _unwrap(ip: IPAddress) -> IPAddress:
    """IPv4 hidden inside IPv6 (mapped, 6to4, NAT64 well-known prefix) is judged as the IPv4 it carries."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
        if ip in ipaddress.ip_network("64:ff9b::/96"):
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def address_problem(ip: IPAddress, allowed: Sequence[IPNetwork] = ()) -> str | None:
    """Why this address may not receive webhooks (a stable reason code), or None when it may."""
    ip = _unwrap(ip)
    if ip in METADATA_ADDRESSES:
        return "metadata"
    if any(ip.version == net.version and ip in net for net in allowed):
        return None
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link_local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_reserved:
        return "reserved"
    if ip.is_private:
        return "private"
    if not ip.is_global:
        return "reserved"
    return None


def check_addresses(host: str, addresses: Iterable[IPAddress], allowed: Sequence[IPNetwork] = ()) -> list[IPAddress]:
    """Refuse the host if any of its addresses is unsafe (an attacker controls which one gets used)."""
    out = list(dict.fromkeys(addresses))
    if not out:
        raise UnsafeTargetError("unresolvable", f"The host {host} does not resolve.")
    for ip in out:
        problem = address_problem(ip, allowed)
        if problem is not None:
            raise UnsafeTargetError(
                problem, f"The host {host} resolves to a {problem.replace('_', '-')} address ({ip})."
            )
    return out


__all__ = [
    "IPAddress",
    "IPNetwork",
    "Target",
    "UnsafeTargetError",
    "address_problem",
    "check_addresses",
    "literal_address",
    "parse_networks",
    "parse_target",
]
