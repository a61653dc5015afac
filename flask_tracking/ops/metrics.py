"""Prometheus metrics with prometheus-client, right under several worker processes.

Under `flask-tracking serve` every process (the Granian workers and the supervising writer)
writes its numbers to memory-mapped files in one directory (prometheus-client's multiprocess
mode, `PROMETHEUS_MULTIPROC_DIR`), and whichever worker answers `/metrics` adds them all up.
Elsewhere (`flask-tracking run`, tests) a process keeps them in memory.

A multiprocess counter costs ~3 µs an increment and a histogram ~6 µs an observation — as much
as the collector's whole fast path — so the request path never touches them directly: it adds
to a `Tally` in the process (a lock and a few integer additions), which hands its totals over
once a second. The writer, one batch at a time, uses the metrics directly.

What is measured when /metrics is asked (the spool's size and age, the writer's heartbeat) is
read then, by `SpoolCollector`, rather than kept up to date on every request.
"""

from __future__ import annotations

import bisect
import glob
import os
import threading
import time
import weakref
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from flask import Flask, current_app, request
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from flask_tracking.ingest import spool as spool_files

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
FLUSH_SECONDS = 1.0
EVENT_PATH = "/api/event"  # answered before Flask (collector/fast.py, endpoint.py)
ROUTE_KEY = "flask_tracking.route"  # the environ key where a request's route template is put
UNMATCHED = "(unmatched)"  # the route label of a request no route matched: a bounded label
# Seconds; a dashboard page is tens of milliseconds, an export up to several seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_SIZE_BUCKETS = (1, 10, 50, 100, 500, 1000, 2500, 5000, 10000, 50000)
BATCH_SECONDS_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """Every metric of one app, in its own registry (so that several apps may share a process)."""

    def __init__(self) -> None:
        registry = self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "flask_tracking_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "flask_tracking_http_request_duration_seconds",
            "Time to answer a request (to its first byte for streamed exports), by route.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.forwarded = Counter(
            "flask_tracking_http_forwarded_requests",
            "Requests to the app's pages (not the collector), by whether they came with "
            "X-Forwarded-For: `flask-tracking doctor` compares them with PROXY_COUNT.",
            ["forwarded"],
            registry=registry,
        )
        self.accepted = Counter(
            "flask_tracking_events_accepted",
            "Events the collector accepted into the spool.",
            registry=registry,
        )
        self.dropped = Counter(
            "flask_tracking_events_dropped",
            "Events the collector answered 202 but did not keep, by reason.",
            ["reason"],
            registry=registry,
        )
        self.stored = Counter(
            "flask_tracking_events_stored",
            "Events the writer stored in the event store.",
            registry=registry,
        )
        self.batch_events = Histogram(
            "flask_tracking_writer_batch_events",
            "Events in each batch the writer stored.",
            buckets=BATCH_SIZE_BUCKETS,
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "flask_tracking_writer_batch_seconds",
            "Time the writer took to enrich and store a batch.",
            buckets=BATCH_SECONDS_BUCKETS,
            registry=registry,
        )
        self.database_errors = Counter(
            "flask_tracking_database_errors",
            "Database errors, by where they happened (web, writer, event_store).",
            ["component"],
            registry=registry,
        )
        self.rollups_refreshed = Gauge(
            "flask_tracking_rollups_refreshed_timestamp_seconds",
            "When the writer last refreshed sessions and rollups (Unix time); the rollup lag "
            "is time() minus this.",
            multiprocess_mode="max",
            registry=registry,
        )
        self.tally = Tally(self)

    def database_error(self, component: str) -> None:
        self.database_errors.labels(component).inc()


class Tally:
    """Counts of the request path, kept in the process and handed to the metrics in batches.

    Adding is a lock and a few integer additions; `flush` (every FLUSH_SECONDS, from a daemon
    thread of the process, and at exit) moves the totals into the metrics. Histogram buckets
    are added per bucket (`add_observations`), which is what observing each value would do.
    """

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self._lock = threading.Lock()
        self._requests: defaultdict[tuple[str, str, str], int] = defaultdict(int)
        self._latency: dict[str, tuple[list[int], list[float]]] = {}
        self._accepted = 0
        self._dropped: defaultdict[str, int] = defaultdict(int)
        self._forwarded: defaultdict[str, int] = defaultdict(int)
        self._flushing = False  # whether the process's flusher knows of this tally

    def _forked(self) -> None:
        """In a forked child: the parent's thread and lock did not come along."""
        self._lock = threading.Lock()
        self._flushing = False

    def request(self, route: str, method: str, status: str, seconds: float) -> None:
        key = (route, method, status)
        bucket = bisect.bisect_left(LATENCY_BUCKETS, seconds)
        with self._lock:
            self._requests[key] += 1
            latency = self._latency.get(route)
            if latency is None:
                latency = self._latency[route] = ([0] * (len(LATENCY_BUCKETS) + 1), [0.0])
            latency[0][bucket] += 1
            latency[1][0] += seconds
        if not self._flushing:
            self._start_flusher()

    def forwarded(self, header: bool) -> None:
        with self._lock:
            self._forwarded["yes" if header else "no"] += 1
        if not self._flushing:
            self._start_flusher()

    def event(self, reason: str | None) -> None:
        with self._lock:
            if reason:
                self._dropped[reason] += 1
            else:
                self._accepted += 1
        if not self._flushing:
            self._start_flusher()

    def flush(self) -> None:
        """Hand everything counted so far to the metrics."""
        with self._lock:
            requests, self._requests = self._requests, defaultdict(int)
            latency, self._latency = self._latency, {}
            accepted, self._accepted = self._accepted, 0
            dropped, self._dropped = self._dropped, defaultdict(int)
            forwarded, self._forwarded = self._forwarded, defaultdict(int)
        metrics = self.metrics
        for header, count in forwarded.items():
            metrics.forwarded.labels(header).inc(count)
        for labels, count in requests.items():
            metrics.requests.labels(*labels).inc(count)
        for route, (buckets, total) in latency.items():
            add_observations(metrics.latency.labels(route), buckets, total[0])
        if accepted:
            metrics.accepted.inc(accepted)
        for reason, count in dropped.items():
            metrics.dropped.labels(reason).inc(count)

    def _start_flusher(self) -> None:
        with self._lock:
            if self._flushing:
                return
            self._flushing = True
        _TALLIES.add(self)
        _start_flusher()


# One flusher thread per process for every tally in it (a process running many apps — the
# tests — must not run a thread per app); tallies of apps gone drop out of the weak set.
_TALLIES: weakref.WeakSet[Tally] = weakref.WeakSet()
_FLUSHER_LOCK = threading.Lock()
_flusher_running = False


def _start_flusher() -> None:
    global _flusher_running  # noqa: PLW0603 - the process's one flusher
    with _FLUSHER_LOCK:
        if _flusher_running:
            return
        _flusher_running = True
    threading.Thread(target=_flush_forever, name="metrics-flush", daemon=True).start()


def _flush_forever() -> None:
    while True:
        time.sleep(FLUSH_SECONDS)
        for tally in list(_TALLIES):
            tally.flush()


def _after_fork_in_child() -> None:
    """The parent's flusher thread did not come along: the child starts its own."""
    global _FLUSHER_LOCK, _flusher_running  # noqa: PLW0603
    _FLUSHER_LOCK = threading.Lock()
    _flusher_running = False
    for tally in list(_TALLIES):
        tally._forked()
    _TALLIES.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


def add_observations(child: Any, buckets: list[int], total: float) -> None:
    """Add to a histogram what observing `buckets[i]` values in bucket i would, in one go.

    prometheus-client keeps a histogram as one value per bucket (not cumulative) and the sum;
    tests/ops/test_metrics.py checks this against the same values observed one by one."""
    if any(buckets):
        child._sum.inc(total)
        for index, count in enumerate(buckets):
            if count:
                child._buckets[index].inc(count)


class SpoolCollector(Collector):
    """What the spool and writer look like when /metrics is asked."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def collect(self) -> Iterator[Metric]:
        found = spool_files.segments(self.directory)
        size = GaugeMetricFamily(
            "flask_tracking_spool_bytes", "Bytes of events waiting in the spool."
        )
        size.add_metric([], float(sum(segment.size for segment in found)))
        yield size
        count = GaugeMetricFamily("flask_tracking_spool_segments", "Files in the spool.")
        count.add_metric([], float(len(found)))
        yield count
        oldest = GaugeMetricFamily(
            "flask_tracking_spool_oldest_age_seconds",
            "Age of the oldest spool file still there (0 when the spool is empty): an upper "
            "bound on how long the oldest waiting event has waited.",
        )
        oldest.add_metric([], _oldest_age(found))
        yield oldest
        age = spool_files.heartbeat_age(self.directory)
        beat = GaugeMetricFamily(
            "flask_tracking_writer_heartbeat_age_seconds",
            "Seconds since the writer last completed a pass (absent before its first).",
        )
        if age is not None:
            beat.add_metric([], age)
        yield beat


def _oldest_age(found: Iterable[spool_files.Segment]) -> float:
    # A segment's name begins with its creation time in nanoseconds (ingest/spool.py).
    created = [int(segment.name.split("-", 1)[0]) for segment in found if segment.size]
    return max(0.0, time.time() - min(created) / 1e9) if created else 0.0


def init_app(app: Flask) -> None:
    """Give the app its metrics (in the multiprocess directory when this process has one),
    tally the collector's events and note each request's route for the middleware."""
    directory = os.environ.get(MULTIPROCESS_VARIABLE)
    if directory and not getattr(values.ValueClass, "_multiprocess", False):
        values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
    _install(app, Metrics())

    @app.before_request
    def note_route() -> None:
        rule = request.url_rule
        request.environ[ROUTE_KEY] = rule.rule if rule is not None else UNMATCHED
        metrics_of(app).tally.forwarded("X-Forwarded-For" in request.headers)


def _install(app: Flask, metrics: Metrics) -> None:
    app.extensions["metrics"] = metrics
    app.extensions["ingest"].counted = metrics.tally.event


def use_directory(app: Flask, directory: str) -> None:
    """Switch this process (the `serve` supervisor) to multiprocess mode in `directory`,
    emptied first, and rebuild the app's metrics there; its children inherit the variable."""
    os.makedirs(directory, exist_ok=True)
    for stale in glob.glob(os.path.join(directory, "*.db")):
        os.unlink(stale)  # counters start again with the server, as Prometheus expects
    os.environ[MULTIPROCESS_VARIABLE] = directory
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
    _install(app, Metrics())


def forwarded_counts(directory: str) -> dict[str, float]:
    """The forwarded/not requests counted in a multiprocess directory (by `serve`)."""
    if not glob.glob(os.path.join(directory, "*.db")):
        return {}
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    counts: dict[str, float] = {}
    for family in registry.collect():
        if family.name == "flask_tracking_http_forwarded_requests":
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    key = sample.labels["forwarded"]
                    counts[key] = counts.get(key, 0.0) + sample.value
    return counts


def directory_of(config: Any) -> str:
    """Where `serve`'s processes keep their metrics files (METRICS_DIR, or DATA_DIR's)."""
    return str(config.get("METRICS_DIR") or os.path.join(config["DATA_DIR"], "metrics"))


def metrics_of(app: Flask) -> Metrics:
    metrics: Metrics = app.extensions["metrics"]
    return metrics


def current_metrics() -> Metrics:
    return metrics_of(current_app)


def exposition_registry(app: Flask, spool_directory: str) -> CollectorRegistry:
    """The registry /metrics renders: every process's files when there are several."""
    directory = os.environ.get(MULTIPROCESS_VARIABLE)
    if directory:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    else:
        metrics_of(app).tally.flush()  # this process's own counts, up to now
        registry = CollectorRegistry()
        registry.register(_Own(metrics_of(app).registry))
    registry.register(SpoolCollector(spool_directory))
    return registry


class _Own(Collector):
    """One process's registry, collected inside another registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        yield from self.registry.collect()


class Instrumented:
    """WSGI middleware behind the collector's fast path (which tallies its own requests, at
    less cost): every other request's route, method, status and time, tallied.

    The route is the matched rule's template (`/sites/<id:site_id>`), which Flask's
    before_request hook puts in the environ, or the collector's path: never the raw path, so
    the number of series stays bounded whatever URLs strangers send."""

    def __init__(self, app: Flask, next_app: WSGIApplication) -> None:
        self.flask_app = app
        self.next_app = next_app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        status = ["500"]

        def recording(status_line: str, headers: Any, exc_info: Any = None) -> Any:
            status[0] = status_line[:3]
            return start_response(status_line, headers, exc_info)

        try:
            return self.next_app(environ, recording)
        finally:
            route = environ.get(ROUTE_KEY) or (
                EVENT_PATH if environ.get("PATH_INFO") == EVENT_PATH else UNMATCHED
            )
            seconds = time.perf_counter() - started
            metrics_of(self.flask_app).tally.request(
                route, environ.get("REQUEST_METHOD", ""), status[0], seconds
            )
