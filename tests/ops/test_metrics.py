"""/metrics: what the collector, the web app and the writer count, read back in Prometheus's
text format (in one process; tests/ops/test_metrics_served.py reads a real multi-process
server)."""

from __future__ import annotations

import bisect
import json
import threading
import time
from pathlib import Path
from typing import Any

from flask import Flask
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from flask_tracking.ingest import drain
from flask_tracking.ops.metrics import LATENCY_BUCKETS, add_observations
from tests.collector.test_abuse_limits import CHROME

TOKEN = "s3cret-metrics-token"


def scrape(app: Flask, token: str = TOKEN) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample /metrics answers: (name, sorted labels) -> value."""
    response = app.test_client().get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for sample in family.samples
    }


def metrics_app(app_factory: Any, **settings: Any) -> Flask:
    app: Flask = app_factory(METRICS_ENABLED=True, METRICS_TOKEN=TOKEN, **settings)
    return app


def post_event(app: Flask, site: int, path: str, **headers: str) -> int:
    response = app.test_client().post(
        "/api/event",
        data=json.dumps({"site": site, "url": f"https://example.com{path}"}),
        content_type="application/json",
        headers={"User-Agent": CHROME, **headers},
        environ_base={"REMOTE_ADDR": "203.0.113.9"},
    )
    return response.status_code


def test_metrics_are_not_found_unless_enabled_and_need_the_token_when_set(
    app_factory: Any,
) -> None:
    off = app_factory()
    assert off.test_client().get("/metrics").status_code == 404
    on = metrics_app(app_factory)
    refused = on.test_client().get("/metrics", headers={"Authorization": "Bearer wrong"})
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert refused.get_json()["error"]["code"] == "unauthorized"
    assert on.test_client().get("/metrics").status_code == 401
    assert scrape(on)
    tokenless = app_factory(METRICS_ENABLED=True)
    assert tokenless.test_client().get("/metrics").status_code == 200


def test_events_requests_and_the_writer_are_counted(app_factory: Any, site_in: Any) -> None:
    app = metrics_app(app_factory)
    site = site_in(app)
    for number in range(5):
        assert post_event(app, site, f"/page/{number}") == 202
    assert post_event(app, site, "/private", DNT="1") == 202  # dropped: Do Not Track
    assert post_event(app, 999_999, "/") == 404
    client = app.test_client()
    assert client.get("/login/").status_code == 200
    assert client.get("/no/such/<script>alert(1)</script>").status_code == 404

    before = scrape(app)
    assert before[("flask_tracking_events_accepted_total", ())] == 5
    assert before[("flask_tracking_events_dropped_total", (("reason", "dnt"),))] == 1
    assert before[("flask_tracking_spool_bytes", ())] > 0
    assert before[("flask_tracking_spool_oldest_age_seconds", ())] >= 0
    event = (("method", "POST"), ("route", "/api/event"))
    assert before[("flask_tracking_http_requests_total", (*event, ("status", "202")))] == 6
    assert before[("flask_tracking_http_requests_total", (*event, ("status", "404")))] == 1
    login = (("method", "GET"), ("route", "/login/"), ("status", "200"))
    assert before[("flask_tracking_http_requests_total", login)] == 1
    # A URL no route matches is one bounded label, never the stranger's path.
    unmatched = (("method", "GET"), ("route", "(unmatched)"), ("status", "404"))
    assert before[("flask_tracking_http_requests_total", unmatched)] == 1
    assert not any("script" in value for _, labels in before for _, value in labels)
    latency = ("flask_tracking_http_request_duration_seconds_count", (("route", "/login/"),))
    assert before[latency] == 1
    assert ("flask_tracking_events_stored_total", ()) not in before or (
        before[("flask_tracking_events_stored_total", ())] == 0
    )

    assert drain(app) == 5
    after = scrape(app)
    assert after[("flask_tracking_events_stored_total", ())] == 5
    assert after[("flask_tracking_writer_batch_events_count", ())] >= 1
    assert after[("flask_tracking_writer_batch_events_sum", ())] == 5
    assert after[("flask_tracking_writer_batch_seconds_count", ())] >= 1
    assert after[("flask_tracking_rollups_refreshed_timestamp_seconds", ())] > 1.7e9
    # Each scrape is itself a request, counted like any other.
    scrapes = (("method", "GET"), ("route", "/metrics"), ("status", "200"))
    assert after[("flask_tracking_http_requests_total", scrapes)] == 1


def test_a_database_error_on_a_page_is_counted(app_factory: Any, tmp_path: Path) -> None:
    # A database of its own (whatever this leg's is), since a table goes missing from it.
    app = metrics_app(app_factory, SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path}/own.db")
    with app.app_context():
        from flask_tracking.extensions import db

        db.session.execute(db.text("DROP TABLE shared_links"))
        db.session.commit()
    client = app.test_client()
    # Any page that reads the dropped table: the shared links of a (made-up) token.
    assert client.get("/share/" + "x" * 32).status_code == 500
    samples = scrape(app)
    assert samples[("flask_tracking_database_errors_total", (("component", "web"),))] == 1


def test_a_batch_of_observations_adds_what_observing_each_would() -> None:
    values = [0.0004, 0.003, 0.003, 0.02, 0.7, 0.7, 0.7, 12.0, 0.0025]
    one_by_one, batched = CollectorRegistry(), CollectorRegistry()
    single = Histogram("h_seconds", "h", ["route"], buckets=LATENCY_BUCKETS, registry=one_by_one)
    for value in values:
        single.labels("/x").observe(value)
    counts = [0] * (len(LATENCY_BUCKETS) + 1)
    for value in values:
        counts[bisect.bisect_left(LATENCY_BUCKETS, value)] += 1
    many = Histogram("h_seconds", "h", ["route"], buckets=LATENCY_BUCKETS, registry=batched)
    add_observations(many.labels("/x"), counts, sum(values))
    assert exposed(batched) == exposed(one_by_one)
    assert exposed(batched)[("h_seconds_bucket", (("le", "0.005"), ("route", "/x")))] == 4


def exposed(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The samples, but for the time each series was created."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


def test_many_apps_in_one_process_share_one_flusher_thread(app_factory: Any) -> None:
    apps = [metrics_app(app_factory) for _ in range(5)]
    for app in apps:
        assert app.test_client().get("/login/").status_code == 200
    flushers = [t for t in threading.enumerate() if t.name == "metrics-flush"]
    assert len(flushers) == 1  # not one per app: a test run makes thousands of apps
    time.sleep(1.5)  # the one flusher hands every app's counts over
    for app in apps:
        login = (("method", "GET"), ("route", "/login/"), ("status", "200"))
        assert scrape(app)[("flask_tracking_http_requests_total", login)] == 1
