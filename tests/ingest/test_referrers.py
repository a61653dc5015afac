"""Referrer URLs to source names, self-referrals, and referrer spam."""

from __future__ import annotations

import pytest

from flask_tracking.ingest.referrers import is_referrer_spam, referrer_source

PAGE_HOST = "example.org"


@pytest.mark.parametrize(
    ("referrer", "source"),
    [
        ("https://www.google.com/", "Google"),
        ("https://google.com/search?q=x", "Google"),
        ("https://www.google.co.uk/", "Google"),
        ("https://www.google.com.au/", "Google"),
        ("https://www.google.de/", "Google"),
        ("https://news.google.com/articles/abc", "Google News"),
        ("https://mail.google.com/mail/u/0/", "Gmail"),
        ("https://www.bing.com/search?q=x", "Bing"),
        ("https://cn.bing.com/", "Bing"),
        ("https://duckduckgo.com/", "DuckDuckGo"),
        ("https://search.yahoo.com/", "Yahoo!"),
        ("https://uk.search.yahoo.com/", "Yahoo!"),
        ("https://search.yahoo.co.jp/", "Yahoo!"),
        ("https://yandex.ru/search/", "Yandex"),
        ("https://yandex.com.tr/", "Yandex"),
        ("https://ya.ru/", "Yandex"),
        ("https://www.baidu.com/link?url=x", "Baidu"),
        ("https://www.ecosia.org/search?q=x", "Ecosia"),
        ("https://search.brave.com/search?q=x", "Brave Search"),
        ("https://www.qwant.com/?q=x", "Qwant"),
        ("https://www.startpage.com/", "Startpage"),
        ("https://t.co/abc123", "Twitter/X"),
        ("https://twitter.com/someone", "Twitter/X"),
        ("https://x.com/someone", "Twitter/X"),
        ("https://www.facebook.com/", "Facebook"),
        ("https://m.facebook.com/", "Facebook"),
        ("https://l.facebook.com/l.php?u=x", "Facebook"),
        ("https://lm.facebook.com/", "Facebook"),
        ("https://fb.com/", "Facebook"),
        ("https://l.instagram.com/", "Instagram"),
        ("https://www.linkedin.com/feed/", "LinkedIn"),
        ("https://lnkd.in/abc", "LinkedIn"),
        ("https://www.reddit.com/r/python/", "Reddit"),
        ("https://old.reddit.com/", "Reddit"),
        ("https://out.reddit.com/t3_x", "Reddit"),
        ("https://news.ycombinator.com/item?id=1", "Hacker News"),
        ("https://github.com/owner/repo", "GitHub"),
        ("https://www.youtube.com/watch?v=x", "YouTube"),
        ("https://m.youtube.com/", "YouTube"),
        ("https://youtu.be/x", "YouTube"),
        ("https://www.pinterest.com/pin/1/", "Pinterest"),
        ("https://www.pinterest.co.uk/", "Pinterest"),
        ("https://en.wikipedia.org/wiki/Flask", "Wikipedia"),
        ("https://de.m.wikipedia.org/wiki/Flask", "Wikipedia"),
        ("https://chatgpt.com/", "ChatGPT"),
        ("https://chat.openai.com/", "ChatGPT"),
        ("https://www.perplexity.ai/search", "Perplexity"),
        ("https://outlook.live.com/mail/0/", "Outlook"),
        ("HTTPS://WWW.GOOGLE.COM/", "Google"),
    ],
)
def test_well_known_hosts_get_a_name(referrer: str, source: str) -> None:
    assert referrer_source(referrer, PAGE_HOST) == source


@pytest.mark.parametrize(
    ("referrer", "source"),
    [
        ("https://blog.example.net/post", "blog.example.net"),
        ("https://www.example.net/", "example.net"),
        ("https://Example.NET:8443/a", "example.net"),
        ("http://user:secret@example.net/", "example.net"),
        ("https://example.net./", "example.net"),
        ("https://mastodon.social/@someone", "mastodon.social"),
        ("https://google.example.net/", "google.example.net"),
        ("https://notgoogle.com/", "notgoogle.com"),
        ("http://192.0.2.1:8080/", "192.0.2.1"),
    ],
)
def test_other_hosts_are_reported_normalised(referrer: str, source: str) -> None:
    assert referrer_source(referrer, PAGE_HOST) == source


@pytest.mark.parametrize(
    ("referrer", "source"),
    [
        ("android-app://com.google.android.gm", "Gmail"),
        ("android-app://com.google.android.googlequicksearchbox/https/www.google.com", "Google"),
        ("android-app://com.twitter.android/", "Twitter/X"),
        ("android-app://com.slack/", "com.slack"),
    ],
)
def test_android_app_referrers(referrer: str, source: str) -> None:
    assert referrer_source(referrer, PAGE_HOST) == source


@pytest.mark.parametrize(
    "referrer",
    [
        None,
        "",
        "   ",
        "not a url",
        "/relative/path",
        "ftp://files.example.net/",
        "javascript:alert(1)",
        "about:blank",
        "https://",
        "http://[::1",
    ],
)
def test_missing_or_unusable_referrers_give_none(referrer: str | None) -> None:
    assert referrer_source(referrer, PAGE_HOST) is None


@pytest.mark.parametrize(
    ("referrer", "page_host"),
    [
        ("https://example.org/about", "example.org"),
        ("https://www.example.org/about", "example.org"),
        ("https://example.org/about", "www.example.org"),
        ("https://EXAMPLE.org/", "Example.ORG"),
        ("http://example.org:8000/", "example.org:8000"),
        ("http://[::1]:8000/", "[::1]:8000"),
    ],
)
def test_self_referrals_give_none(referrer: str, page_host: str) -> None:
    assert referrer_source(referrer, page_host) is None


@pytest.mark.parametrize("page_host", [None, "", "[bad"])
def test_unknown_page_host_never_counts_as_self_referral(page_host: str | None) -> None:
    assert referrer_source("https://example.org/", page_host) == "example.org"


def test_subdomain_of_the_page_host_is_a_source() -> None:
    assert referrer_source("https://blog.example.org/", "example.org") == "blog.example.org"


@pytest.mark.parametrize(
    "referrer",
    [
        "http://semalt.com/",
        "https://www.semalt.com/crawler.php?u=x",
        "http://semalt.semalt.com/",
        "http://buttons-for-website.com",
        "https://DARODAR.COM/",
        "http://site3.free-share-buttons.com/",
    ],
)
def test_known_spam_domains_and_their_subdomains_are_spam(referrer: str) -> None:
    assert is_referrer_spam(referrer)


@pytest.mark.parametrize(
    "referrer",
    [
        None,
        "",
        "not a url",
        "https://www.google.com/",
        "https://example.org/",
        "https://notsemalt.com/",
        "https://semalt.com.example.org/",
        "android-app://semalt.com",
    ],
)
def test_other_referrers_are_not_spam(referrer: str | None) -> None:
    assert not is_referrer_spam(referrer)
