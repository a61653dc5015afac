"""User-Agent parsing into browser, version, OS and device type."""

from __future__ import annotations

import pytest

from flask_tracking.ingest.useragent import parse_user_agent

CASES = [
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
        "Chrome",
        "131.0",
        "Windows",
        "desktop",
    ),
    (
        "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        "Firefox",
        "133.0",
        "Linux",
        "desktop",
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/18.1 Safari/605.1.15",
        "Safari",
        "18.1",
        "Mac OS X",
        "desktop",
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
        "Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
        "Mobile Safari",
        "18.1",
        "iOS",
        "mobile",
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Mobile Safari/537.36",
        "Chrome Mobile",
        "131.0",
        "Android",
        "mobile",
    ),
    (
        "Mozilla/5.0 (iPad; CPU OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.7 Mobile/15E148 Safari/604.1",
        "Mobile Safari",
        "17.7",
        "iOS",
        "tablet",
    ),
    (
        "Mozilla/5.0 (Linux; Android 13; SM-X200) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
        "Chrome",
        "131.0",
        "Android",
        "tablet",
    ),
]


@pytest.mark.parametrize(("ua", "browser", "version", "os", "device"), CASES)
def test_common_browsers(ua: str, browser: str, version: str, os: str, device: str) -> None:
    info = parse_user_agent(ua)
    assert (info.browser, info.browser_version, info.os, info.device) == (
        browser,
        version,
        os,
        device,
    )
    assert not info.is_bot


def test_crawlers_are_marked_as_bots() -> None:
    info = parse_user_agent(
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
    )
    assert info.is_bot
    assert info.device == "bot"


@pytest.mark.parametrize("ua", ["", "curl/8.5.0", "x" * 5000, "<script>alert(1)</script>"])
def test_unknown_agents_give_none_not_other(ua: str) -> None:
    info = parse_user_agent(ua)
    assert info.browser != "Other"
    assert info.os != "Other"
    assert info.device in ("desktop", "mobile", "tablet", "bot")
