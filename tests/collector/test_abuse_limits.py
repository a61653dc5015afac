"""The collector's abuse limits and its site lookups: floods are dropped and counted, never
answered 429 or 5xx; a site made a moment ago is known at once; made-up ids stay cheap."""

from __future__ import annotations

import json
import time
from collections import Counter
from functools import partial
from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event

from flask_tracking.extensions import db
from flask_tracking.ingest import current_ingest, sitecache
from flask_tracking.ingest.limits import KeyedBuckets, TokenBucket
from flask_tracking.tracking.models import Site
from tests.conftest import count_rows, drop_counts

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0"


def send(app: Flask, site_id: int, address: str, count: int = 1) -> Counter[tuple[int, str]]:
    """POST `count` events from one address; return (status, drop header) counts."""
    client = app.test_client()
    seen: Counter[tuple[int, str]] = Counter()
    for number in range(count):
        response = client.post(
            "/api/event",
            data=json.dumps({"site": site_id, "url": f"https://example.com/{number}"}),
            content_type="application/json",
            headers={"User-Agent": CHROME},
            environ_base={"REMOTE_ADDR": address},
        )
        seen[(response.status_code, response.headers.get("X-Tracking-Dropped", ""))] += 1
    return seen


def counts(app: Flask) -> tuple[int, dict[str, int]]:
    """Store the spool; return the stored events and the drop counts by reason."""
    drops = {reason: count for (_site, reason), count in drop_counts(app).items()}
    return count_rows(app, "events"), drops


def test_a_bucket_allows_its_burst_then_its_rate() -> None:
    bucket = TokenBucket(rate=10, burst=5)
    start = bucket.stamp
    assert [bucket.take(start) for _ in range(6)] == [True] * 5 + [False]
    assert bucket.take(start + 0.15)  # 0.15 s later: one more token (and a half)
    assert not bucket.take(start + 0.15)
    assert [bucket.take(start + 100) for _ in range(6)] == [True] * 5 + [False]  # never over 5


def test_keyed_buckets_keep_keys_apart_and_their_memory_bounded() -> None:
    buckets = KeyedBuckets(rate=1, burst=2, max_keys=100)
    assert [buckets.take("a", 0.0) for _ in range(3)] == [True, True, False]
    assert buckets.take("b", 0.0)
    for number in range(1000):
        buckets.take(number, 0.0)
    assert len(buckets._buckets) <= 100


def test_a_moment_read_before_another_threads_costs_no_tokens() -> None:
    # Two threads read the clock, then race to the lock: the later moment may be counted
    # first. With a high rate, going back even 0.1 ms used to take 100 tokens away.
    for buckets in (KeyedBuckets(rate=1_000_000, burst=100), TokenBucket(1_000_000, 100)):
        take = buckets.take if isinstance(buckets, TokenBucket) else partial(buckets.take, "a")
        assert take(10.0)
        assert all(take(10.0 - 0.0001) for _ in range(50))  # earlier moments: still allowed
        assert take(10.0)


def test_a_rate_of_zero_turns_a_limit_off() -> None:
    buckets = KeyedBuckets(rate=0, burst=1)
    assert all(buckets.take("a", 0.0) for _ in range(1000))
    assert not buckets.enabled


def test_a_burst_from_one_address_is_cut_dropped_and_counted(
    app_factory: Any, site_in: Any
) -> None:
    app = app_factory(COLLECTOR_IP_RATE=1.0, COLLECTOR_IP_BURST=50.0)
    site_id = site_in(app)
    seen = send(app, site_id, "203.0.113.9", 400)
    accepted = seen[(202, "")]
    # The burst, and at most a token or two that refilled while the requests ran.
    assert 50 <= accepted <= 55
    assert seen[(202, "rate_limited")] == 400 - accepted
    assert set(seen) == {(202, ""), (202, "rate_limited")}  # never a 429, never a 5xx
    stored, drops = counts(app)
    assert stored == accepted
    assert drops == {"rate_limited": 400 - accepted}


def test_other_addresses_and_sites_keep_their_own_allowance(app_factory: Any, site_in: Any) -> None:
    app = app_factory(COLLECTOR_IP_RATE=1.0, COLLECTOR_IP_BURST=10.0)
    first, second = site_in(app), site_in(app, base_url="https://second.example")
    assert send(app, first, "203.0.113.9", 30)[(202, "")] <= 11
    assert send(app, first, "203.0.113.10", 10) == Counter({(202, ""): 10})
    # The same address on another site: limited per site, so people behind one NAT who visit
    # different sites never add up against each other.
    assert send(app, second, "203.0.113.9", 10) == Counter({(202, ""): 10})


def test_a_flood_on_one_site_from_many_addresses_meets_the_site_limit(
    app_factory: Any, site_in: Any
) -> None:
    app = app_factory(COLLECTOR_SITE_RATE=1.0, COLLECTOR_SITE_BURST=100.0)
    flooded, quiet = site_in(app), site_in(app, base_url="https://quiet.example")
    seen: Counter[tuple[int, str]] = Counter()
    for number in range(300):
        seen += send(app, flooded, f"198.51.100.{number % 250}")
    assert 100 <= seen[(202, "")] <= 105
    assert seen[(202, "rate_limited")] == 300 - seen[(202, "")]
    assert send(app, quiet, "198.51.100.1", 5) == Counter({(202, ""): 5})


def test_the_default_limits_cut_a_burst_of_400_from_one_address(app: Flask, site_in: Any) -> None:
    site_id = site_in(app)
    seen = send(app, site_id, "203.0.113.77", 400)
    assert seen[(202, "rate_limited")] > 0
    assert seen[(202, "")] >= int(app.config["COLLECTOR_IP_BURST"])


def test_a_site_added_by_another_worker_is_known_at_once(app_factory: Any, site_in: Any) -> None:
    app = app_factory(INGEST_SITE_CACHE_SECONDS=3600.0, INGEST_SITE_MISS_INTERVAL=1.0)
    known = site_in(app)
    assert send(app, known, "203.0.113.1") == Counter({(202, ""): 1})  # the cache is loaded
    # Another worker adds a site: this one's cache has never heard of it.
    new = site_in(app, base_url="https://new.example")
    assert send(app, new, "203.0.113.1") == Counter({(202, ""): 1})


def test_an_unknown_id_is_looked_up_once_per_interval_and_floods_are_capped(
    app_factory: Any, site_in: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = app_factory(INGEST_SITE_CACHE_SECONDS=3600.0, INGEST_SITE_MISS_INTERVAL=60.0)
    site_in(app)
    sites = current_ingest_of(app).sites
    sites.get(-1)  # load the cache
    lookups: list[str] = []

    def count_site_lookups(*args: Any) -> None:
        statement = args[2]
        if "FROM sites" in statement:
            lookups.append(statement)

    with app.app_context():
        engine = db.engine
    # The clock stands still, so the lookup budget does not refill while a slow machine
    # works through the 500 ids (it refills 50 a second).
    frozen = time.monotonic()
    monkeypatch.setattr(sitecache, "time", SimpleNamespace(monotonic=lambda: frozen))
    event.listen(engine, "before_cursor_execute", count_site_lookups)
    try:
        for _ in range(20):
            assert sites.get(999_999) is None
        assert len(lookups) == 1  # the same made-up id: asked once, then remembered
        lookups.clear()
        for made_up in range(1_000_000, 1_000_500):
            assert sites.get(made_up) is None
        # 500 different made-up ids: at most the lookup budget reaches the database.
        assert len(lookups) <= 51
    finally:
        event.remove(engine, "before_cursor_execute", count_site_lookups)


def current_ingest_of(app: Flask) -> Any:
    with app.app_context():
        return current_ingest()


def test_unknown_site_is_still_a_documented_404(app: Flask) -> None:
    response = app.test_client().post(
        "/api/event",
        data=json.dumps({"site": 424242, "url": "https://example.com/"}),
        content_type="application/json",
        environ_base={"REMOTE_ADDR": "203.0.113.1"},
    )
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "unknown_site"
    with app.app_context():
        assert db.session.get(Site, 424242) is None
