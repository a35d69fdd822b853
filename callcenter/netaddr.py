"""IP addresses and networks from settings and sockets, parsed one way everywhere: the
FastAGI peer allowlist, the web's trusted proxies and the settings checks of both."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Iterable[str], where: str) -> tuple[IpNetwork, ...]:
    """``["10.0.0.5", "10.0.0.0/24"]`` as networks; ValueError names the bad entry as
    ``where[index]``."""
    networks = []
    for index, value in enumerate(values):
        try:
            networks.append(ipaddress.ip_network(value, strict=False))
        except ValueError:
            raise ValueError(f"{where}[{index}]: {value[:60]!r} is not an IP address or "
                             "network (e.g. 10.0.0.5 or 10.0.0.0/24)") from None
    return tuple(networks)


def parse_address(text: str | None) -> IpAddress | None:
    """A peer's address, None if it is none (a Unix socket, garbage). An IPv6 zone is
    dropped, and an IPv4 peer of a socket bound to ``::`` is its IPv4 address."""
    if not text:
        return None
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def address_in(address: IpAddress, networks: Sequence[IpNetwork]) -> bool:
    return any(address in network for network in networks)  # False across IP versions
