"""Recognise automated traffic: crawlers, headless browsers, HTTP tools and prefetches."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache

from flask_tracking.ingest.useragent import MAX_USER_AGENT_LENGTH, parse_user_agent

# Tokens that no interactive browser sends. ua-parser already knows the big crawlers by name; this
# catches what it files under "Other": scripts, headless browsers and link-preview fetchers.
_BOT_TOKENS = (
    # Generic words crawlers put in their names (Googlebot, AhrefsBot, Baiduspider, Yahoo! Slurp).
    # "bot" skips "cubot": CUBOT is an Android phone brand whose model names appear in real UAs.
    r"(?<!cu)bot",
    r"crawl",
    r"spider",
    r"slurp",
    r"scraper",
    # Link unfurlers and "preview" services (BingPreview, Google Web Preview, SkypeUriPreview).
    r"facebookexternalhit",
    r"facebookcatalog",
    r"preview",
    r"embedly",
    r"ia_archiver",
    r"mediapartners-google",
    r"google-inspectiontool",
    # Headless and lab browsers: they run the tracker like a real browser but nobody is watching.
    r"headless",
    r"phantomjs",
    r"lighthouse",  # also matches Chrome-Lighthouse (PageSpeed Insights)
    r"\bptst\b",  # WebPageTest
    # HTTP client libraries and command-line tools.
    r"\bcurl/",
    r"\bwget/",
    r"python-requests",
    r"python-urllib",
    r"python-httpx",
    r"aiohttp",
    r"go-http-client",
    r"^java/",  # the JDK's HttpURLConnection; "Java/" anywhere else is a Java-based crawler's name
    r"okhttp",
    r"libwww-perl",
    r"apache-httpclient",
    r"\baxios/",
    r"node-fetch",
    r"\bundici\b",
    r"scrapy",
    r"httpie",
    r"guzzlehttp",
    r"postmanruntime",
)
_BOT_PATTERN = re.compile("|".join(_BOT_TOKENS), re.IGNORECASE)

# Header names browsers use to mark speculative loads, and the values that mean "not a visit yet".
_PREFETCH_HEADERS = frozenset({"purpose", "sec-purpose", "x-purpose", "x-moz"})
_PREFETCH_VALUES = frozenset({"prefetch", "prerender", "preview"})


@lru_cache(maxsize=8192)  # real traffic repeats a few thousand User-Agents over and over
def is_bot(user_agent: str) -> bool:
    """Return True when the User-Agent belongs to a crawler, headless browser or HTTP tool."""
    ua = user_agent.strip()[:MAX_USER_AGENT_LENGTH]
    if not ua:
        return True  # every browser sends a User-Agent; only scripts leave it out
    if _BOT_PATTERN.search(ua):
        return True
    # ua-parser's device family "Spider" covers crawlers whose names lack the tokens above.
    return parse_user_agent(ua).is_bot


def is_prefetch(headers: Mapping[str, str]) -> bool:
    """Return True when the request is a prefetch or preview rather than a page view."""
    # Iterate instead of looking up: a plain dict is case-sensitive, HTTP header names are not.
    for name, value in headers.items():
        if name.lower() not in _PREFETCH_HEADERS:
            continue
        # Sec-Purpose is a structured list ("prefetch;prerender"); its first token decides.
        first = re.split(r"[;,]", value, maxsplit=1)[0].strip().lower()
        if first in _PREFETCH_VALUES:
            return True
    return False
