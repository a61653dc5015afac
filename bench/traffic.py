"""A realistic mix of collector requests, for `make bench-ingest` and the writer's bench.

Real sites see thousands of distinct User-Agents (every browser, version and device model)
and tens of thousands of client addresses, both Zipf-distributed: a few very common, a long
tail seen once. That tail is what costs the writer (GeoIP lookups, User-Agent parsing, new
visitors and sessions), so a bench on 21 User-Agents and 50 addresses flatters it.

`requests(site, count, seed)` returns (address, User-Agent, content type, JSON body) tuples:
a population of visitors (an address drawn Zipf from ~30,000 public IPv4/IPv6 addresses, a
User-Agent drawn Zipf from ~3,000 built from real browser, OS and device templates, a screen
width), each visit a few page views Zipf over ~300 paths, with referrers, UTM tags and ~9 %
custom events with props. Deterministic for a seed. `write_files()` writes them for wrk
(bench/events.lua reads one tab-separated file per wrk thread: BENCH_REQUESTS).
"""

from __future__ import annotations

import bisect
import ipaddress
import itertools
import json
import random
from collections.abc import Iterator, Sequence
from pathlib import Path

SITE_URL = "https://shop.example.com"
ADDRESSES = 30_000
USER_AGENTS = 3_000
PATHS = 300


class Zipf:
    """Pick from a list with weight 1 / rank**s (the first item the most common)."""

    def __init__(self, items: Sequence[str], s: float = 1.0) -> None:
        self.items = items
        total, self.cumulative = 0.0, []
        for rank in range(1, len(items) + 1):
            total += 1 / rank**s
            self.cumulative.append(total)

    def pick(self, rng: random.Random) -> str:
        index = bisect.bisect_left(self.cumulative, rng.random() * self.cumulative[-1])
        return self.items[min(index, len(self.items) - 1)]


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return address.is_global and not address.is_multicast


def addresses(count: int, rng: random.Random) -> list[str]:
    """Distinct public addresses: 85 % IPv4 from allocated unicast space, 15 % IPv6."""
    found: dict[str, None] = {}
    v6_prefixes = (0x2001_0000, 0x2400_0000, 0x2600_0000, 0x2800_0000, 0x2A00_0000, 0x2C0F_0000)
    while len(found) < count:
        if rng.random() < 0.85:
            address: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.IPv4Address(
                rng.randrange(1 << 24, 224 << 24)
            )
        else:
            high = rng.choice(v6_prefixes) + rng.randrange(1 << 20)
            address = ipaddress.IPv6Address((high << 96) | rng.getrandbits(96))
        if _is_public(address):
            found[str(address)] = None
    return list(found)


_ANDROID_MODELS = (
    "Pixel 8", "Pixel 7a", "Pixel 6", "SM-S921B", "SM-S911B", "SM-A546B", "SM-A155F", "SM-G991B",
    "SM-X710", "2201117TG", "23049PCD8G", "M2101K6G", "CPH2581", "RMX3771", "moto g54 5G",
    "motorola edge 40", "V2250", "22101316G", "A063", "Nokia G42 5G", "K",
)  # fmt: skip
_MAC = ("10_15_7", "14_7_1", "13_6_9")
_WINDOWS = ("Windows NT 10.0; Win64; x64", "Windows NT 10.0; WOW64", "Windows NT 6.1; Win64; x64")
_LINUX = ("X11; Linux x86_64", "X11; Ubuntu; Linux x86_64", "X11; Fedora; Linux x86_64")


def user_agents(count: int, rng: random.Random) -> list[str]:
    """Distinct browser User-Agents, from the templates real browsers use."""
    found: dict[str, None] = {}
    while len(found) < count:
        kind = rng.random()
        chrome = f"{rng.randint(100, 131)}.0.{rng.randint(4000, 6800)}.{rng.randint(0, 200)}"
        webkit = "AppleWebKit/537.36 (KHTML, like Gecko)"
        if kind < 0.35:
            platform = rng.choice(
                _WINDOWS + _LINUX + tuple(f"Macintosh; Intel Mac OS X {m}" for m in _MAC)
            )
            extra = rng.choice(
                ("", "", "", f" Edg/{chrome}", f" OPR/{rng.randint(100, 115)}.0.0.0")
            )
            ua = f"Mozilla/5.0 ({platform}) {webkit} Chrome/{chrome} Safari/537.36{extra}"
        elif kind < 0.6:
            android = rng.randint(9, 15)
            model = rng.choice(_ANDROID_MODELS)
            ua = (
                f"Mozilla/5.0 (Linux; Android {android}; {model}) {webkit} "
                f"Chrome/{chrome} Mobile Safari/537.36"
            )
        elif kind < 0.8:
            ios = f"{rng.randint(15, 18)}_{rng.randint(0, 7)}"
            device = rng.choice(("iPhone; CPU iPhone OS", "iPhone; CPU iPhone OS", "iPad; CPU OS"))
            version = ios.replace("_", ".")
            ua = (
                f"Mozilla/5.0 ({device} {ios} like Mac OS X) AppleWebKit/605.1.15 "
                f"(KHTML, like Gecko) Version/{version} Mobile/15E148 Safari/604.1"
            )
        elif kind < 0.92:
            firefox = rng.randint(100, 133)
            platform = rng.choice(
                _WINDOWS + _LINUX + ("Macintosh; Intel Mac OS X 14.7", "Android 14; Mobile")
            )
            ua = f"Mozilla/5.0 ({platform}; rv:{firefox}.0) Gecko/20100101 Firefox/{firefox}.0"
        else:
            mac = rng.choice(_MAC)
            safari = f"{rng.randint(15, 18)}.{rng.randint(0, 6)}"
            ua = (
                f"Mozilla/5.0 (Macintosh; Intel Mac OS X {mac}) AppleWebKit/605.1.15 "
                f"(KHTML, like Gecko) Version/{safari} Safari/605.1.15"
            )
        found[ua] = None
    return list(found)


def paths(count: int, rng: random.Random) -> list[str]:
    """Site paths in order of popularity."""
    sections = ("products", "blog", "docs", "stores", "help", "account", "tag")
    found = ["/", "/pricing", "/about", "/cart", "/checkout", "/contact", "/search"]
    while len(found) < count:
        section = rng.choice(sections)
        found.append(f"/{section}/{rng.choice(('item', 'page', 'post'))}-{rng.randint(1, 5000)}")
        found = list(dict.fromkeys(found))
    return found


_REFERRERS = (
    None, None, None, None, None, None, "https://www.google.com/", "https://www.google.com/",
    "https://www.google.co.uk/", "https://www.google.de/", "https://duckduckgo.com/",
    "https://www.bing.com/", "https://search.brave.com/", "https://t.co/x1y2z3",
    "https://news.ycombinator.com/", "https://www.reddit.com/r/Coffee/", "https://github.com/",
    "https://www.linkedin.com/", "https://www.facebook.com/", "https://l.instagram.com/",
)  # fmt: skip
_UTMS = (
    "utm_source=newsletter&utm_medium=email&utm_campaign=winter_sale",
    "utm_source=google&utm_medium=cpc&utm_campaign=brand&utm_term=coffee+grinder",
    "utm_source=facebook&utm_medium=social&utm_campaign=black_friday",
    "ref=producthunt",
)
_WIDTHS = (360, 375, 390, 393, 412, 414, 768, 820, 1024, 1280, 1366, 1440, 1536, 1920, 2560)


def requests(site: int, count: int, seed: int = 1) -> Iterator[tuple[str, str, str, str]]:
    """Yield `count` requests: (client address, User-Agent, Content-Type, JSON body)."""
    rng = random.Random(seed)
    pick_address = Zipf(addresses(ADDRESSES, random.Random(1)), 0.8)
    pick_agent = Zipf(user_agents(USER_AGENTS, random.Random(2)), 1.0)
    pick_path = Zipf(paths(PATHS, random.Random(3)), 1.0)
    made = 0
    while made < count:
        address, agent, width = pick_address.pick(rng), pick_agent.pick(rng), rng.choice(_WIDTHS)
        referrer = rng.choice(_REFERRERS)
        content_type = rng.choice(("application/json", "text/plain;charset=UTF-8"))
        for view in range(min(1 + int(rng.expovariate(0.5)), count - made)):
            url = SITE_URL + pick_path.pick(rng)
            if view == 0 and rng.random() < 0.3:
                url += "?" + rng.choice(_UTMS)
            body: dict[str, object] = {"site": site, "url": url, "width": width}
            if view == 0 and referrer:
                body["referrer"] = referrer
            roll = rng.random()
            if roll < 0.04:
                body |= {
                    "name": "signup",
                    "props": {"plan": rng.choice(("free", "pro")), "trial": True},
                }
            elif roll < 0.07:
                body |= {
                    "name": "add_to_cart",
                    "props": {
                        "sku": f"SKU-{rng.randint(100, 999)}",
                        "price": rng.randint(5, 300) + 0.99,
                    },
                }
            elif roll < 0.09:
                body |= {
                    "name": "outbound",
                    "props": {"url": f"https://partner.example.org/p/{rng.randint(1, 50)}"},
                }
            else:
                body["name"] = "pageview"
            yield address, agent, content_type, json.dumps(body, separators=(",", ":"))
            made += 1


def write_files(
    prefix: Path, site: int, threads: int, per_thread: int, seed: int = 1
) -> list[Path]:
    """Write `per_thread` requests for each wrk thread to `prefix`.1, .2, …; return the paths."""
    made = requests(site, threads * per_thread, seed)
    written = []
    for number in range(1, threads + 1):
        path = Path(f"{prefix}.{number}")
        with open(path, "w", encoding="utf-8") as out:
            for request in itertools.islice(made, per_thread):
                out.write("\t".join(request) + "\n")
        written.append(path)
    return written
