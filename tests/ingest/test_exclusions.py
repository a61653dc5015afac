"""Exclusion rules: IP networks and path globs, parsed from settings text and applied to hits."""

from __future__ import annotations

import re
from ipaddress import IPv4Network, IPv6Network, ip_network

import pytest

from flask_tracking.ingest.exclusions import (
    MAX_PATH_PATTERNS,
    ip_excluded,
    parse_networks,
    parse_path_patterns,
    path_excluded,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ()),
        ("\n  \n", ()),
        ("# office\n", ()),
        ("10.0.0.0/8", ("10.0.0.0/8",)),
        ("203.0.113.7", ("203.0.113.7/32",)),
        ("2001:db8::/32", ("2001:db8::/32",)),
        ("2001:db8::1", ("2001:db8::1/128",)),
        ("10.0.0.0/8, 192.168.0.0/16", ("10.0.0.0/8", "192.168.0.0/16")),
        ("10.0.0.0/8,192.168.0.0/16,", ("10.0.0.0/8", "192.168.0.0/16")),
        ("10.0.0.0/8\n\n192.168.0.0/16\n", ("10.0.0.0/8", "192.168.0.0/16")),
        ("  10.0.0.0/8   # VPN\n# old: 1.2.3.4\n", ("10.0.0.0/8",)),
        ("192.168.1.7/24", ("192.168.1.0/24",)),
        ("::ffff:10.0.0.0/104", ("10.0.0.0/8",)),
        ("::ffff:203.0.113.7", ("203.0.113.7/32",)),
    ],
)
def test_parse_networks(text: str, expected: tuple[str, ...]) -> None:
    assert parse_networks(text) == tuple(ip_network(entry) for entry in expected)


@pytest.mark.parametrize(
    ("text", "bad"),
    [
        ("10.0.0.0/33", "10.0.0.0/33"),
        ("10.0.0.0/8\nexample.com", "example.com"),
        ("10.0.0.0/8, 300.1.2.3", "300.1.2.3"),
        ("2001:db8::/129", "2001:db8::/129"),
        ("10.0.0.0/8;192.168.0.0/16", "10.0.0.0/8;192.168.0.0/16"),
    ],
)
def test_parse_networks_names_the_bad_entry(text: str, bad: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(bad))):
        parse_networks(text)


NETWORKS: tuple[IPv4Network | IPv6Network, ...] = (
    ip_network("10.0.0.0/8"),
    ip_network("203.0.113.7/32"),
    ip_network("2001:db8::/32"),
)


@pytest.mark.parametrize(
    ("ip", "excluded"),
    [
        ("10.1.2.3", True),
        ("203.0.113.7", True),
        ("203.0.113.8", False),
        ("2001:db8::1", True),
        ("2001:db9::1", False),
        ("::ffff:10.1.2.3", True),
        ("::ffff:203.0.113.8", False),
        ("fe80::1%eth0", False),
        (" 10.1.2.3 ", True),
        (None, False),
        ("", False),
        ("not-an-ip", False),
        ("10.1.2", False),
    ],
)
def test_ip_excluded(ip: str | None, excluded: bool) -> None:
    assert ip_excluded(ip, NETWORKS) is excluded


def test_no_networks_exclude_nothing() -> None:
    assert not ip_excluded("10.1.2.3", ())


def test_zone_id_is_ignored_when_matching() -> None:
    assert ip_excluded("fe80::1%eth0", (ip_network("fe80::/10"),))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ()),
        ("/admin/*", ("/admin/*",)),
        ("  /admin/*  \n\n/preview\n", ("/admin/*", "/preview")),
        ("# staff pages\n/admin/*\n", ("/admin/*",)),
        ("/a\n/a\n", ("/a",)),
        ("/page#section", ("/page#section",)),
    ],
)
def test_parse_path_patterns(text: str, expected: tuple[str, ...]) -> None:
    assert parse_path_patterns(text) == expected


@pytest.mark.parametrize("bad", ["admin/*", "*/admin", "https://example.org/admin"])
def test_path_patterns_must_start_with_a_slash(bad: str) -> None:
    with pytest.raises(ValueError, match="must start with"):
        parse_path_patterns(f"/ok\n{bad}\n")


def test_path_pattern_count_is_limited() -> None:
    allowed = "\n".join(f"/p{n}" for n in range(MAX_PATH_PATTERNS))
    assert len(parse_path_patterns(allowed)) == MAX_PATH_PATTERNS
    with pytest.raises(ValueError, match="Too many"):
        parse_path_patterns(f"{allowed}\n/one-more")


@pytest.mark.parametrize(
    ("pathname", "pattern", "excluded"),
    [
        ("/admin/users", "/admin/*", True),
        ("/admin/a/b", "/admin/*", True),
        ("/admin/", "/admin/*", True),
        ("/admin", "/admin/*", False),
        ("/administrator", "/admin/*", False),
        ("/preview", "/preview", True),
        ("/preview/", "/preview", False),
        ("/preview/x", "/preview", False),
        ("/Preview", "/preview", False),
        ("/blog/2024/draft", "/blog/*/draft", True),
        ("/blog/2024/11/draft", "/blog/*/draft", True),
        ("/p1", "/p?", True),
        ("/p10", "/p?", False),
        ("/v1/x", "/v[12]/*", True),
        ("/v3/x", "/v[12]/*", False),
    ],
)
def test_path_excluded(pathname: str, pattern: str, excluded: bool) -> None:
    assert path_excluded(pathname, (pattern,)) is excluded


def test_any_matching_pattern_excludes() -> None:
    assert path_excluded("/preview", ("/admin/*", "/preview"))


def test_no_patterns_exclude_nothing() -> None:
    assert not path_excluded("/anything", ())
