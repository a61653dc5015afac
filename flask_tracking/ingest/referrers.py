"""Turn a referrer URL into a source name, and spot referrer spam."""

from __future__ import annotations

import re
from functools import cache, lru_cache
from importlib import resources
from urllib.parse import urlsplit

# Hosts (after dropping "www.") and the source name reports show for them. A key also covers its
# subdomains, so "reddit.com" takes in old.reddit.com and out.reddit.com; the most specific key
# wins, which is how mail.google.com becomes Gmail rather than Google.
_SOURCES: dict[str, str] = {
    "mail.google.com": "Gmail",
    "news.google.com": "Google News",
    "bing.com": "Bing",
    "duckduckgo.com": "DuckDuckGo",
    "baidu.com": "Baidu",
    "ecosia.org": "Ecosia",
    "search.brave.com": "Brave Search",
    "qwant.com": "Qwant",
    "startpage.com": "Startpage",
    "ya.ru": "Yandex",
    "t.co": "Twitter/X",
    "twitter.com": "Twitter/X",
    "x.com": "Twitter/X",
    "facebook.com": "Facebook",
    "fb.com": "Facebook",
    "instagram.com": "Instagram",
    "linkedin.com": "LinkedIn",
    "lnkd.in": "LinkedIn",
    "reddit.com": "Reddit",
    "news.ycombinator.com": "Hacker News",
    "github.com": "GitHub",
    "youtube.com": "YouTube",
    "youtu.be": "YouTube",
    "wikipedia.org": "Wikipedia",
    "chatgpt.com": "ChatGPT",
    "chat.openai.com": "ChatGPT",
    "perplexity.ai": "Perplexity",
    "outlook.live.com": "Outlook",
    "outlook.office.com": "Outlook",
    "outlook.office365.com": "Outlook",
}

# Brands with a site per country (google.de, google.co.uk, google.com.au, yahoo.co.jp ...): the
# name followed by an optional "co."/"com." and a two- or three-letter top-level domain.
_COUNTRY_SITES = re.compile(r"(?:^|\.)(google|yahoo|yandex|pinterest)\.(?:com?\.)?[a-z]{2,3}$")
_BRANDS = {"google": "Google", "yahoo": "Yahoo!", "yandex": "Yandex", "pinterest": "Pinterest"}

# Android apps send "android-app://<package>" as the referrer. The common ones get the same name
# as their website so app and web traffic add up; any other app is reported by its package name,
# which is stable and still tells the reader where the visit came from.
_ANDROID_APPS: dict[str, str] = {
    "com.google.android.gm": "Gmail",
    "com.google.android.googlequicksearchbox": "Google",
    "com.google.android.apps.searchlite": "Google",
    "com.google.android.youtube": "YouTube",
    "com.twitter.android": "Twitter/X",
    "com.facebook.katana": "Facebook",
    "com.facebook.lite": "Facebook",
    "com.instagram.android": "Instagram",
    "com.linkedin.android": "LinkedIn",
    "com.reddit.frontpage": "Reddit",
    "com.pinterest": "Pinterest",
    "com.microsoft.office.outlook": "Outlook",
}


def _normalise_host(host: str) -> str:
    """Lowercase a host name and drop a trailing dot and a leading "www."."""
    host = host.lower().rstrip(".")
    return host.removeprefix("www.")


def _referrer_host(referrer: str | None) -> tuple[str, str] | None:
    """Return (scheme, normalised host) of a referrer, or None when it has no usable host."""
    if not referrer:
        return None
    try:
        parts = urlsplit(referrer.strip())
        host = parts.hostname  # lowercase, without port and userinfo
    except ValueError:  # e.g. an unbalanced "[" in the host
        return None
    scheme = parts.scheme.lower()
    if not host or scheme not in ("http", "https", "android-app"):
        return None
    return scheme, _normalise_host(host)


def _parents(host: str) -> list[str]:
    """Return the host and each parent domain, most specific first."""
    labels = host.split(".")
    return [".".join(labels[i:]) for i in range(len(labels))]


@lru_cache(maxsize=16384)  # pure, and the writer asks for every event: referrers repeat
def referrer_source(referrer: str | None, page_host: str | None) -> str | None:
    """Return the source name of a referrer, or None for no referrer or a self-referral."""
    found = _referrer_host(referrer)
    if found is None:
        return None
    scheme, host = found
    if scheme == "android-app":
        return _ANDROID_APPS.get(host, host)
    if page_host:
        try:
            # Parse as a netloc so "example.com:8000" and "[::1]:8000" lose their port.
            own = urlsplit(f"//{page_host.strip()}").hostname
        except ValueError:
            own = None
        if own and _normalise_host(own) == host:
            return None  # moving between pages of the same site is not a source
    for candidate in _parents(host):
        if candidate in _SOURCES:
            return _SOURCES[candidate]
    if match := _COUNTRY_SITES.search(host):
        return _BRANDS[match.group(1)]
    return host


@cache
def _spam_domains() -> frozenset[str]:
    """Load the bundled referrer-spam list once."""
    text = (
        resources.files("flask_tracking.ingest")
        .joinpath("data/referrer_spam.txt")
        .read_text(encoding="utf-8")
    )
    domains = (line.split("#", 1)[0].strip().lower() for line in text.splitlines())
    return frozenset(domain for domain in domains if domain)


@lru_cache(maxsize=8192)  # the collector asks for every event; referrers repeat
def is_referrer_spam(referrer: str | None) -> bool:
    """Return True when the referrer's host or one of its parent domains is known spam."""
    found = _referrer_host(referrer)
    if found is None or found[0] == "android-app":
        return False
    spam = _spam_domains()
    return any(candidate in spam for candidate in _parents(found[1]))
