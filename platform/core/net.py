"""The client's address, as the trusted reverse proxy reports it (DESIGN.md §9).

`X-Forwarded-For` is honoured only when the direct peer (`REMOTE_ADDR`) is one of
TRUSTED_PROXY_IPS, and then exactly TRUSTED_PROXY_COUNT entries from the right: the entry the
outermost proxy we run appended. A client that reaches gunicorn directly, or that sends its own
`X-Forwarded-For` through the proxy, cannot pick its address. gunicorn's `forwarded_allow_ips` is
read from the same TRUSTED_PROXY_IPS variable (deploy/gunicorn.conf.py), so both trust the same
peers.

- `client_ip`: the address itself, for audit rows and logs.
- `client_key`: what lockout (django-axes, AXES_CLIENT_IP_CALLABLE) and throttles
  (core.api.throttling) count. An IPv4 address as is; an IPv6 address as its /64 network,
  because one subscriber is routinely given a whole /64 and counting single IPv6 addresses would
  hand an attacker 2**64 fresh identities.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Every IPv6 address of one /64 is one client for lockout and throttling.
IPV6_CLIENT_PREFIX = 64

# Headers only a proxy we run may set. From any other peer they are dropped on entry
# (untrusted_forwarding_headers_drop), so nothing downstream can be fooled by them: DRF's own
# throttles read X-Forwarded-For, Django's SECURE_PROXY_SSL_HEADER reads X-Forwarded-Proto.
FORWARDING_HEADERS = (
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PORT",
    "HTTP_FORWARDED",
    "HTTP_X_REAL_IP",
    "HTTP_X_REQUEST_ID",
)


@lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    networks: list[IPNetwork] = []
    for entry in entries:
        entry = entry.strip()
        if entry == "*":  # as gunicorn's forwarded_allow_ips: any peer (the network guarantees it)
            networks += [ipaddress.IPv4Network("0.0.0.0/0"), ipaddress.IPv6Network("::/0")]
            continue
        try:
            # strict, as gunicorn: "10.0.0.1/24" (host bits set) is a mistake, not 10.0.0.0/24.
            networks.append(ipaddress.ip_network(entry))
        except ValueError as exc:
            raise ImproperlyConfigured(f"TRUSTED_PROXY_IPS: {exc}") from exc
    return tuple(networks)


def trusted_proxy_networks() -> tuple[IPNetwork, ...]:
    """TRUSTED_PROXY_IPS parsed (addresses or CIDR networks, comma-separated, or `*`)."""
    return _networks(tuple(settings.TRUSTED_PROXY_IPS))


def ip_parse(value: str | None) -> IPAddress | None:
    """An address, or None for anything that is not one. IPv4-mapped IPv6 (`::ffff:192.0.2.1`,
    what a dual-stack socket reports for an IPv4 peer) becomes the IPv4 address it carries."""
    try:
        address = ipaddress.ip_address((value or "").strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.scope_id is not None:  # fe80::1%eth0: the zone means nothing to a database
            return ipaddress.IPv6Address(str(address).split("%", 1)[0])
    return address


def peer_is_trusted_proxy(request: HttpRequest) -> bool:
    """Whether the direct peer is one of our reverse proxies (TRUSTED_PROXY_IPS)."""
    peer = ip_parse(request.META.get("REMOTE_ADDR"))
    return peer is not None and any(peer in network for network in trusted_proxy_networks())


def untrusted_forwarding_headers_drop(request: HttpRequest) -> bool:
    """Remove FORWARDING_HEADERS unless the peer is a trusted proxy. Returns whether it is."""
    if peer_is_trusted_proxy(request):
        return True
    for header in FORWARDING_HEADERS:
        request.META.pop(header, None)
    return False


def client_ip(request: HttpRequest) -> str | None:
    """The client's address: behind a trusted proxy, the X-Forwarded-For entry
    TRUSTED_PROXY_COUNT from the right; otherwise the peer. None if there is no valid address."""
    peer = ip_parse(request.META.get("REMOTE_ADDR"))
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies > 0 and peer_is_trusted_proxy(request):
        hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
        if len(hops) >= proxies:
            forwarded = ip_parse(hops[-proxies])
            # Our proxy writes this entry; if it is not an address, count the proxy instead.
            if forwarded is not None:
                return str(forwarded)
    return str(peer) if peer is not None else None


def address_key(address: str) -> str:
    """The counting key of an address: IPv4 as is, IPv6 as the first address of its /64."""
    parsed = ip_parse(address)
    if parsed is None:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        network = ipaddress.IPv6Network((parsed, IPV6_CLIENT_PREFIX), strict=False)
        return str(network.network_address)
    return str(parsed)


def client_key(request: HttpRequest) -> str | None:
    """The key lockout and throttles count a client by (see the module docstring)."""
    address = client_ip(request)
    return address_key(address) if address is not None else None
