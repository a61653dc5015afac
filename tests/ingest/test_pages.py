"""Page URLs split into host, path, a privacy-filtered URL and UTM fields; screen-size buckets."""

from __future__ import annotations

import pytest

from flask_tracking.ingest.pages import DEFAULT_ALLOWED_QUERY, PageURL, parse_page_url, screen_size


@pytest.mark.parametrize(
    ("url", "hostname"),
    [
        ("https://example.org/", "example.org"),
        ("https://Example.ORG/", "example.org"),
        ("https://www.example.org/", "www.example.org"),
        ("https://example.org:8443/", "example.org"),
        ("https://user:secret@example.org/", "example.org"),
        ("http://[2001:db8::1]:8080/", "2001:db8::1"),
    ],
)
def test_hostname_is_lowercased_without_port(url: str, hostname: str) -> None:
    assert parse_page_url(url).hostname == hostname


@pytest.mark.parametrize(
    ("url", "pathname"),
    [
        ("https://example.org", "/"),
        ("https://example.org?page=2", "/"),
        ("https://example.org/", "/"),
        ("https://example.org/Blog/Post/", "/Blog/Post/"),
        ("https://example.org/caf%C3%A9", "/caf%C3%A9"),
        ("https://example.org/a%2Fb", "/a%2Fb"),
        ("https://example.org/docs#install", "/docs"),
    ],
)
def test_pathname_is_kept_as_sent(url: str, pathname: str) -> None:
    assert parse_page_url(url).pathname == pathname


@pytest.mark.parametrize(
    ("url", "stored"),
    [
        ("https://example.org/", "https://example.org/"),
        ("https://example.org", "https://example.org/"),
        ("HTTPS://Example.ORG/Path", "https://example.org/Path"),
        ("https://example.org:8443/a", "https://example.org:8443/a"),
        ("https://user:secret@example.org/a", "https://example.org/a"),
        ("http://[2001:db8::1]:8080/a", "http://[2001:db8::1]:8080/a"),
        ("https://example.org/a#section", "https://example.org/a"),
        ("https://example.org/a?token=abc&email=x%40y.z", "https://example.org/a"),
        ("https://example.org/a?gclid=1&fbclid=2", "https://example.org/a"),
        ("https://example.org/a?q=secret+search", "https://example.org/a"),
        (
            "https://example.org/a?session=s&utm_source=news&page=2&utm_id=7#top",
            "https://example.org/a?utm_source=news&page=2&utm_id=7",
        ),
        (
            "https://example.org/a?lang=de&ref=hn&source=feed",
            "https://example.org/a?lang=de&ref=hn&source=feed",
        ),
        ("https://example.org/a?UTM_Source=News", "https://example.org/a?UTM_Source=News"),
        (
            "https://example.org/a?utm_campaign=a%20b+c",
            "https://example.org/a?utm_campaign=a%20b+c",
        ),
        ("https://example.org/a?&&page=2&", "https://example.org/a?page=2"),
    ],
)
def test_stored_url_keeps_only_allowed_query_parameters(url: str, stored: str) -> None:
    assert parse_page_url(url).url == stored


def test_custom_allow_list_replaces_the_default() -> None:
    url = "https://example.org/search?q=flask&page=2&utm_medium=email"
    parsed = parse_page_url(url, allowed_query=frozenset({"q"}))
    assert parsed.url == "https://example.org/search?q=flask&utm_medium=email"


def test_default_allow_list_is_small_and_has_no_search_terms() -> None:
    assert frozenset({"ref", "source", "page", "lang"}) == DEFAULT_ALLOWED_QUERY


def test_all_utm_fields_are_extracted() -> None:
    url = (
        "https://example.org/?utm_source=newsletter&utm_medium=email&utm_campaign=spring"
        "&utm_term=shoes&utm_content=button"
    )
    assert parse_page_url(url) == PageURL(
        hostname="example.org",
        pathname="/",
        url=url,
        utm_source="newsletter",
        utm_medium="email",
        utm_campaign="spring",
        utm_term="shoes",
        utm_content="button",
    )


@pytest.mark.parametrize(
    ("query", "utm_source"),
    [
        ("", None),
        ("utm_source=", None),
        ("utm_source=%20%20", None),
        ("utm_source=+news+", "news"),
        ("utm_source=a%20b", "a b"),
        ("utm_source=a+b", "a b"),
        ("utm_source=caf%C3%A9", "café"),
        ("UTM_SOURCE=News", "News"),
        ("utm_source=first&utm_source=second", "first"),
        ("utm_source", None),
        ("utm_source=" + "x" * 300, "x" * 256),
    ],
)
def test_utm_values_are_decoded_trimmed_and_truncated(query: str, utm_source: str | None) -> None:
    assert parse_page_url(f"https://example.org/?{query}").utm_source == utm_source


@pytest.mark.parametrize(
    "url",
    [
        "",
        "/relative/path",
        "https://",
        "https://example.org:notaport/",
        "https://example.org:99999/",
    ],
)
def test_urls_without_host_or_with_a_bad_port_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        parse_page_url(url)


@pytest.mark.parametrize(
    ("width", "size"),
    [
        (None, None),
        (0, None),
        (-1, None),
        (1, "mobile"),
        (375, "mobile"),
        (575, "mobile"),
        (576, "tablet"),
        (768, "tablet"),
        (991, "tablet"),
        (992, "laptop"),
        (1366, "laptop"),
        (1439, "laptop"),
        (1440, "desktop"),
        (1920, "desktop"),
        (7680, "desktop"),
    ],
)
def test_screen_size_buckets(width: int | None, size: str | None) -> None:
    assert screen_size(width) == size
