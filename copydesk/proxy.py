"""Who the client is behind the reverse proxies named in ``COPYDESK_TRUSTED_PROXIES``.

``X-Forwarded-For`` and ``X-Forwarded-Proto`` are headers any client can send, so they are
believed only from a listed proxy: a request that arrives straight from anyone else (gunicorn
listens on 0.0.0.0) has them removed, so Django's ``SECURE_PROXY_SSL_HEADER`` and everything that
reads ``REMOTE_ADDR`` (login limits, API throttles) cannot be fooled. From a listed proxy,
``REMOTE_ADDR`` becomes the right-most address in ``X-Forwarded-For`` that is not a listed proxy:
each proxy appends the address it was connected from, so that is the last one nobody but a trusted
proxy wrote; what a client put further left is its own claim.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def trusted_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """``COPYDESK_TRUSTED_PROXIES`` parsed: addresses or networks (``10.0.0.5``, ``10.0.0.0/8``,
    ``fd00::/8``); a typo is refused at start-up rather than trusting nothing or everything."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"COPYDESK_TRUSTED_PROXIES: {entry!r} is not an IP address or network "
                "(e.g. 10.0.0.5 or 10.0.0.0/8)."
            ) from None
    return tuple(networks)


@lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    return trusted_networks(entries)


def _parse(value: str) -> Address | None:
    """An address as proxies write it: bare, ``[v6]``, or with a port (``1.2.3.4:5678``,
    ``[v6]:80``); None for anything else (``unknown``, a name, garbage)."""
    value = value.strip()
    if value.startswith("["):
        value = value[1:].split("]", 1)[0]
    elif value.count(":") == 1:
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _trusted(address: Address | None, networks: tuple[Network, ...]) -> bool:
    return address is not None and any(address in network for network in networks)


def client_address(meta: dict, networks: tuple[Network, ...]) -> str:
    """The client's address for a request with these WSGI ``meta`` variables."""
    peer = meta.get("REMOTE_ADDR", "")
    current = _parse(peer)
    if not _trusted(current, networks):
        return peer
    hops = [hop for hop in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    for hop in reversed(hops):
        address = _parse(hop)
        if address is None:
            # Unreadable, so nobody trusted vouched for it: the last proxy is as far as we know.
            break
        current = address
        if not _trusted(address, networks):
            break
    return str(current)


class TrustedProxyMiddleware:
    """First in ``MIDDLEWARE``: before SecurityMiddleware asks whether the request is HTTPS."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        networks = _networks(tuple(settings.COPYDESK_TRUSTED_PROXIES))
        meta = request.META
        if _trusted(_parse(meta.get("REMOTE_ADDR", "")), networks):
            meta["REMOTE_ADDR"] = client_address(meta, networks)
        else:
            meta.pop("HTTP_X_FORWARDED_FOR", None)
            meta.pop("HTTP_X_FORWARDED_PROTO", None)
        return self.get_response(request)
