"""The collector's fast path answers exactly as the normal path: one corpus through both.

Two apps share one database and one configuration; one gets every request through its whole
WSGI stack (the fast path in front), the other through the normal path only (ProxyFix →
EventEndpoint → Flask). Both start with full token buckets and see the same requests in the
same order, so every answer — status, every header in order, body — and every spool record
(but its random id and its time) must be equal, drops and rate limits included.
"""

from __future__ import annotations

import io
import json
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask
from werkzeug.test import EnvironBuilder, run_wsgi_app

from flask_tracking.collector.fast import FastPath
from flask_tracking.extensions import db
from flask_tracking.ingest.records import load_line
from flask_tracking.tracking.models import Site
from flask_tracking.users import accounts
from tests.conftest import TEST_DATABASE_URL, make_app

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
URL = "https://example.com/pricing?utm_source=news"


@dataclass
class Case:
    """One request of the corpus, and whether the fast path should answer it itself."""

    name: str
    body: bytes | None
    fast: bool
    method: str = "POST"
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    remote_addr: str = ""  # a fresh address for each case, unless given
    path: str = "/api/event"
    query: str = ""
    chunked: bool = False


def event(site: int, **fields: Any) -> bytes:
    return json.dumps({"site": site, "url": URL, **fields}, ensure_ascii=False).encode()


def corpus(site: int, spam_site: int) -> list[Case]:
    """Valid, invalid, edge-case, non-ASCII, oversize requests, and each drop reason."""
    big_props = {f"k{i}": "v" * 500 for i in range(15)}
    return [
        Case("minimal", event(site), True),
        Case(
            "pageview with everything",
            event(site, name="pageview", referrer="https://www.google.com/", width=1280),
            True,
        ),
        Case(
            "custom event with props",
            event(
                site, name="signup", props={"plan": "pro", "trial": True, "seats": 3, "price": 9.99}
            ),
            True,
        ),
        Case("sendBeacon's text/plain", event(site), True, content_type="text/plain;charset=UTF-8"),
        Case(
            "site as a numeric string", json.dumps({"site": str(site), "url": URL}).encode(), True
        ),
        Case(
            "non-ASCII everywhere",
            event(
                site,
                name="inscription réussie",
                url="https://example.com/café/日本?q=ü",
                referrer="https://例え.jp/",
                props={"ville": "Zürich", "emoji": "🎉"},
            ),
            True,
        ),
        Case("escaped non-ASCII", b'{"site":%d,"url":"https://example.com/\\u00e9"}' % site, True),
        Case("null props and referrer", event(site, props=None, referrer=None), True),
        Case(
            "whitespace to trim",
            event(site, name="  signup  ", url="  https://example.com/x  ", referrer="   "),
            True,
        ),
        Case(
            "duplicate keys (the last wins)",
            b'{"site":%d,"url":"https://example.com/a","url":"https://example.com/b"}' % site,
            True,
        ),
        Case("large props near the limit", event(site, props=big_props), True),
        Case("integer beyond 64 bits in props", event(site, props={"n": 10**30}), False),
        Case("float beyond 2^63 in props", event(site, props={"n": 1e300}), False),
        Case("integer at 2^63 - 1 in props", event(site, props={"n": 2**63 - 1}), True),
        Case(
            "lone surrogate escaped",
            b'{"site":%d,"url":"https://example.com/\\ud800"}' % site,
            False,
        ),
        Case("UTF-8 BOM", b"\xef\xbb\xbf" + event(site), False),
        Case("UTF-16 body", json.dumps({"site": site, "url": URL}).encode("utf-16"), False),
        Case("NaN width", b'{"site":%d,"url":"%s","width":NaN}' % (site, URL.encode()), False),
        Case("not JSON", b"site=1&url=x", False),
        Case("JSON array", b"[1,2,3]", False),
        Case("JSON string", b'"hello"', False),
        Case("empty body", b"", False),
        Case("missing url", json.dumps({"site": site}).encode(), False),
        Case("relative url", event(site, url="/pricing"), False),
        Case("javascript url", event(site, url="javascript:alert(1)"), False),
        Case("unknown field", event(site, colour="red"), False),
        Case("bad width", event(site, width=-5), False),
        Case("boolean site", json.dumps({"site": True, "url": URL}).encode(), False),
        Case("props not an object", event(site, props=[1, 2]), False),
        Case("control characters in name", event(site, name="a\x00b"), False),
        Case(
            "script in a name (stored as text)", event(site, name="<script>alert(1)</script>"), True
        ),
        Case("oversize body", event(site, props={"x": "y" * 9000}), False),
        Case("chunked body", event(site), False, chunked=True),
        Case("unknown site", event(987654), True),
        Case("DNT", event(site), True, headers={"DNT": "1"}),
        Case("prefetch", event(site), True, headers={"Sec-Purpose": "prefetch;prerender"}),
        Case("bot", event(site), True, headers={"User-Agent": "curl/8.5.0"}),
        Case("no User-Agent", event(site), True, headers={"User-Agent": ""}),
        Case("referrer spam", event(site, referrer="https://semalt.com/page"), True),
        Case(
            "excluded address",
            event(spam_site),
            True,
            remote_addr="10.1.2.3",
            headers={"X-Forwarded-For": "10.9.8.7"},
        ),
        Case("excluded path", event(spam_site, url="https://example.com/admin/users"), True),
        Case(
            "forwarded chain: the last hop is ours",
            event(site),
            True,
            headers={"X-Forwarded-For": "198.51.100.7, 192.0.2.1"},
        ),
        Case("forwarded, quoted", event(site), True, headers={"X-Forwarded-For": '"::1", "x"'}),
        Case("forwarded, empty last", event(site), True, headers={"X-Forwarded-For": "1.2.3.4, "}),
        Case("IPv6 client", event(site), True, remote_addr="2001:db8::7"),
        Case("GET", None, False, method="GET"),
        Case("OPTIONS preflight", None, False, method="OPTIONS"),
        Case("PUT", event(site), False, method="PUT"),
        Case("another path", event(site), False, path="/api/events"),
        Case("long query string", event(site), False, query="x=" + "a" * 20_000),
        *(Case(f"flood {n}", event(site), True, remote_addr="198.51.100.99") for n in range(8)),
    ]


def environ_for(case: Case) -> dict[str, Any]:
    headers = {"User-Agent": CHROME, **case.headers}
    builder = EnvironBuilder(
        path=case.path,
        method=case.method,
        data=case.body,
        content_type=case.content_type if case.body is not None else None,
        headers=headers,
        query_string=case.query or None,
        environ_base={"REMOTE_ADDR": case.remote_addr},
    )
    environ = builder.get_environ()
    if case.chunked:
        environ.pop("CONTENT_LENGTH", None)
        environ["HTTP_TRANSFER_ENCODING"] = "chunked"
        environ["wsgi.input_terminated"] = True
        environ["wsgi.input"] = io.BytesIO(case.body or b"")
    return environ


def answer(app: Callable[..., Iterable[bytes]], case: Case) -> tuple[str, list[Any], bytes]:
    body, status, headers = run_wsgi_app(app, environ_for(case), buffered=True)
    # A request id is random for every answer Flask gives (the collector's answers have none).
    return status, [h for h in headers.items() if h[0] != "X-Request-ID"], b"".join(body)


def spooled(app: Flask) -> list[dict[str, Any]]:
    """Capture the records the app spools from now on (the real spool still gets them)."""
    spool = app.extensions["ingest"].spool
    lines: list[dict[str, Any]] = []
    append = spool.append

    def recording(line: bytes) -> None:
        record = load_line(line)
        record.pop("id", None)
        record.pop("t", None)
        lines.append(record)
        append(line)

    spool.append = recording
    return lines


@pytest.fixture
def two_apps() -> Iterable[tuple[Flask, Flask, int, int]]:
    url = TEST_DATABASE_URL or f"sqlite:///{tempfile.mkdtemp()}/shared.db"
    settings = {
        "SQLALCHEMY_DATABASE_URI": url,
        "PROXY_COUNT": 1,
        "COLLECTOR_IP_RATE": 1.0,  # a flood from one address runs out after its burst
        "COLLECTOR_IP_BURST": 4.0,
        "GEOIP_PROVIDER": "none",
    }
    fast, normal = make_app(**settings), make_app(**settings)
    with fast.app_context():
        owner = accounts.register("fast-path@example.com", "correct horse battery", "Owner")
        plain = Site(owner=owner, base_url="https://example.com")
        strict = Site(
            owner=owner,
            base_url="https://example.com",
            excluded_ips="10.0.0.0/8",
            excluded_paths="/admin/*",
        )
        db.session.add_all([plain, strict])
        db.session.commit()
        ids = (plain.id, strict.id)
    yield fast, normal, *ids
    with fast.app_context():
        if db.engine.dialect.name == "postgresql":
            for table in reversed(db.metadata.sorted_tables):
                db.session.execute(table.delete())
            db.session.commit()
        db.engine.dispose()
    with normal.app_context():
        db.engine.dispose()


def test_fast_path_answers_and_spools_like_the_normal_path(
    two_apps: tuple[Flask, Flask, int, int],
) -> None:
    fast_app, normal_app, site, strict_site = two_apps
    fast_stack = fast_app.wsgi_app
    assert isinstance(fast_stack, FastPath)
    normal_stack = normal_app.wsgi_app.next_app  # type: ignore[attr-defined]
    fast_lines, normal_lines = spooled(fast_app), spooled(normal_app)
    cases = corpus(site, strict_site)
    for number, case in enumerate(cases):
        case.remote_addr = case.remote_addr or f"203.0.113.{number}"
    for case in cases:
        before = fast_stack.answered
        fast_answer = answer(fast_stack, case)
        normal_answer = answer(normal_stack, case)
        assert fast_answer == normal_answer, case.name
        assert fast_lines == normal_lines, case.name
        answered_here = case.fast and fast_answer[0].startswith("202")
        assert fast_stack.answered - before == answered_here, case.name
    reasons = {line.get("why") for line in fast_lines if line["k"] == "d"}
    assert reasons == {
        "dnt",
        "prefetch",
        "bot",
        "referrer_spam",
        "excluded_ip",
        "excluded_path",
        "rate_limited",
    }
    assert sum(1 for line in fast_lines if line["k"] == "e") >= 15
