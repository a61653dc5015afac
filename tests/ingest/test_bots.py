"""Bot and prefetch detection: what counts as automated traffic and what does not."""

from __future__ import annotations

import pytest

from flask_tracking.ingest.bots import is_bot, is_prefetch

BROWSERS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.7 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 10; CUBOT P40) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/470.0.0.40.97;FBBV/613000000]",
    "Werkzeug/3.1.9",
]

BOTS = [
    "",
    "   ",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
    "Mozilla/5.0 (compatible; Yahoo! Slurp; http://help.yahoo.com/help/us/ysearch/slurp)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) PhantomJS/2.1.1 "
    "Safari/538.1",
    "Mozilla/5.0 (Linux; Android 11; moto g power (2022)) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36 Chrome-Lighthouse",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36 PTST/241120.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:11.0) like Gecko BingPreview/1.0b",
    "curl/8.5.0",
    "Wget/1.21.4",
    "python-requests/2.32.3",
    "Python-urllib/3.11",
    "python-httpx/0.28.1",
    "Python/3.11 aiohttp/3.11.9",
    "Go-http-client/2.0",
    "Java/17.0.2",
    "okhttp/4.12.0",
    "libwww-perl/6.77",
    "Apache-HttpClient/4.5.14 (Java/17.0.9)",
    "axios/1.7.9",
    "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)",
    "undici",
    "Scrapy/2.12.0 (+https://scrapy.org)",
    "Mozilla/5.0 (compatible; SomeCrawler/1.0)",
    "CURL/8.5.0",
]


@pytest.mark.parametrize("ua", BROWSERS)
def test_browsers_are_not_bots(ua: str) -> None:
    assert not is_bot(ua)


@pytest.mark.parametrize("ua", BOTS)
def test_crawlers_tools_and_headless_browsers_are_bots(ua: str) -> None:
    assert is_bot(ua)


def test_crawler_known_only_to_ua_parser_is_a_bot() -> None:
    # No generic token ("bot", "crawl", ...) here: ua-parser's "Spider" device family decides.
    assert is_bot("Mozilla/5.0 (compatible; Yeti/1.1; +http://naver.me/spd)")


@pytest.mark.parametrize(
    "headers",
    [
        {"Purpose": "prefetch"},
        {"purpose": "Prefetch"},
        {"Sec-Purpose": "prefetch"},
        {"Sec-Purpose": "prefetch;prerender"},
        {"Sec-Purpose": "prerender"},
        {"sec-purpose": "prefetch;anonymous-client-ip"},
        {"X-Purpose": "preview"},
        {"X-PURPOSE": "PREVIEW"},
        {"X-Moz": "prefetch"},
    ],
)
def test_prefetch_headers(headers: dict[str, str]) -> None:
    assert is_prefetch(headers)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"User-Agent": "prefetch"},
        {"Purpose": ""},
        {"X-Moz": "something-else"},
        {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"},
    ],
)
def test_ordinary_requests_are_not_prefetches(headers: dict[str, str]) -> None:
    assert not is_prefetch(headers)
