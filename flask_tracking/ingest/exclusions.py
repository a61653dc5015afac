"""Parse and apply a site's exclusion rules: IP networks and path globs."""

from __future__ import annotations

import re
from collections.abc import Iterable
from fnmatch import fnmatchcase
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network

from flask_tracking.ingest.hit import storable

MAX_PATH_PATTERNS = 100

Network = IPv4Network | IPv6Network


def parse_networks(text: str) -> tuple[Network, ...]:
    """Parse CIDRs or addresses, one a line or comma-separated; raise ValueError on a bad one."""
    networks: list[Network] = []
    for line in text.splitlines():
        for entry in re.split(r"[,\s]+", line.split("#", 1)[0]):
            if not entry:
                continue
            try:
                # strict=False: "192.168.1.7/24" means the /24, not a typo worth refusing.
                network = ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"Not an IP address or network: {entry!r}") from None
            # "::ffff:10.0.0.0/104" written for a dual-stack proxy would never match, because
            # ip_excluded unmaps addresses; store it as the IPv4 network it stands for.
            if (
                isinstance(network, IPv6Network)
                and network.prefixlen >= 96
                and (mapped := network.network_address.ipv4_mapped) is not None
            ):
                network = IPv4Network(f"{mapped}/{network.prefixlen - 96}")
            networks.append(network)
    return tuple(networks)


def ip_excluded(ip: str | None, networks: Iterable[Network]) -> bool:
    """Return True when the address lies in one of the networks; False for None or malformed."""
    if not ip:
        return False
    try:
        address = ip_address(ip.strip().split("%", 1)[0])  # drop an IPv6 zone id ("fe80::1%eth0")
    except ValueError:
        return False
    if address.version == 6 and (mapped := address.ipv4_mapped) is not None:
        address = mapped  # dual-stack sockets report IPv4 clients as ::ffff:a.b.c.d
    # A network of the other IP version simply does not contain the address.
    return any(address in network for network in networks)


def parse_path_patterns(text: str) -> tuple[str, ...]:
    """Parse path globs, one a line starting with "/"; raise ValueError on a bad one or too many."""
    patterns: list[str] = []
    for line in text.splitlines():
        pattern = line.strip()
        # Only whole-line comments, so a "#" inside a pattern is kept as written.
        if not pattern or pattern.startswith("#"):
            continue
        if not pattern.startswith("/"):
            raise ValueError(f'Path pattern must start with "/": {pattern[:80]!r}')
        if not storable(pattern):
            raise ValueError(f"Path pattern has control characters: {pattern[:80]!r}")
        if pattern not in patterns:
            patterns.append(pattern)
    if len(patterns) > MAX_PATH_PATTERNS:
        raise ValueError(f"Too many path patterns: {len(patterns)}, at most {MAX_PATH_PATTERNS}.")
    return tuple(patterns)


def path_excluded(pathname: str, patterns: Iterable[str]) -> bool:
    """Return True when the path matches one of the globs (case-sensitive, "*" crosses "/")."""
    # fnmatchcase: paths are case-sensitive on the web, and its "*" also matches "/", so
    # "/admin/*" covers "/admin/users" and "/admin/a/b" (but not "/admin" itself). "?" is any one
    # character and "[...]" a character class, as in shell globs.
    return any(fnmatchcase(pathname, pattern) for pattern in patterns)
