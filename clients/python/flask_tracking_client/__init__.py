"""Server-side pageviews for Flask, Django and any WSGI app, sent to a Flask-Tracking server.

    from flask_tracking_client import Tracker

    tracker = Tracker("https://analytics.example.com", site=1, api_key="ft_…")
    tracker.init_app(app)                                  # Flask
    application = tracker.wrap(get_wsgi_application())     # Django, or any WSGI app

Each successful HTML answer to a GET becomes a pageview with the visitor's address and
User-Agent, sent the way the server's API takes server-side events
(`POST /api/v1/sites/{site}/events/batch`, an API key of the site's admin). Nothing here can
slow or fail the host's requests: a request only puts a small dict on a bounded in-process
queue; a background thread sends batches and retries with backoff while the server is away.
An event is dropped only when the queue is full, and counted (`tracker.stats`). Bots,
referrer spam and the site's exclusions are left to the server, which drops and counts them.

Standard library only: installable on its own (`pip install flask-tracking-client`), without
the server's dependencies.
"""

from __future__ import annotations

import atexit
import fnmatch
import ipaddress
import json
import os
import queue
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

__version__ = "1.0.0"
__all__ = ["Stats", "Tracker", "__version__"]

MAX_URL = 2048  # what the server accepts (its MAX_URL_LENGTH default)
MAX_REFERRER = 2048
MAX_USER_AGENT = 1024
HTML_TYPES = ("text/html", "application/xhtml+xml")

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]


@dataclass
class Stats:
    """What the tracker did since it started."""

    queued: int = 0  # events put on the queue
    sent: int = 0  # events the server took (stored, or dropped by its own rules)
    dropped_full: int = 0  # events lost because the queue was full (the server away too long)
    rejected: int = 0  # events the server refused as invalid (never retried)
    retries: int = 0  # failed attempts to reach the server (each retried later)


class Tracker:
    """Send pageviews (and custom events) of a WSGI app to a Flask-Tracking site."""

    def __init__(
        self,
        server: str,
        site: int,
        api_key: str,
        *,
        include: Iterable[str] = ("*",),
        exclude: Iterable[str] = (),
        proxy_count: int = 0,
        respect_dnt: bool = True,
        queue_size: int = 10_000,
        batch_size: int = 100,
        flush_interval: float = 1.0,
        timeout: float = 5.0,
        max_backoff: float = 60.0,
    ) -> None:
        self.endpoint = f"{server.rstrip('/')}/api/v1/sites/{int(site)}/events/batch"
        self.api_key = api_key
        self.include = tuple(include)
        self.exclude = tuple(exclude)
        self.proxy_count = proxy_count
        self.respect_dnt = respect_dnt
        self.batch_size = max(1, min(batch_size, 100))
        self.flush_interval = flush_interval
        self.timeout = timeout
        self.max_backoff = max_backoff
        self.stats = Stats()
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        atexit.register(self.close, 2.0)

    # -- the host app --------------------------------------------------------------------------

    def wrap(self, app: WSGIApp) -> WSGIApp:
        """Return the WSGI app with a pageview sent for each HTML page it answers."""

        def tracked(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
            seen: dict[str, Any] = {}

            def start(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
                seen["status"], seen["headers"] = status, headers
                return start_response(status, headers, *exc)

            result = app(environ, start)
            return _Observed(result, lambda: self._observe(environ, seen))

        return tracked

    def init_app(self, app: Any) -> None:
        """Flask: wrap the app's WSGI callable."""
        app.wsgi_app = self.wrap(app.wsgi_app)

    def track(
        self,
        name: str,
        url: str,
        ip: str,
        user_agent: str,
        *,
        referrer: str | None = None,
        props: dict[str, str | int | float | bool] | None = None,
    ) -> bool:
        """Queue a custom event for a visitor; False if it could not be queued."""
        event = self._event(name, url, ip, user_agent, referrer)
        if event is None:
            return False
        if props:
            event["props"] = props
        return self._put(event)

    # -- what goes on the queue ----------------------------------------------------------------

    def _observe(self, environ: Environ, seen: dict[str, Any]) -> None:
        try:
            event = self._pageview(environ, seen)
            if event is not None:
                self._put(event)
        except Exception:  # never the host's problem: no pageview rather than a failed request
            return

    def _pageview(self, environ: Environ, seen: dict[str, Any]) -> dict[str, Any] | None:
        status = str(seen.get("status", ""))
        if environ.get("REQUEST_METHOD") != "GET" or not status.startswith("2"):
            return None
        content_type = next(
            (value for key, value in seen.get("headers", ()) if key.lower() == "content-type"), ""
        )
        if not content_type.lower().startswith(HTML_TYPES):
            return None
        path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        if not any(fnmatch.fnmatchcase(path, p) for p in self.include) or any(
            fnmatch.fnmatchcase(path, p) for p in self.exclude
        ):
            return None
        if self.respect_dnt and environ.get("HTTP_DNT") == "1":
            return None
        purpose = (environ.get("HTTP_SEC_PURPOSE", "") + environ.get("HTTP_PURPOSE", "")).lower()
        if "prefetch" in purpose:
            return None
        return self._event(
            "pageview",
            self._url(environ, path),
            self._address(environ),
            environ.get("HTTP_USER_AGENT", ""),
            environ.get("HTTP_REFERER"),
        )

    def _event(
        self, name: str, url: str, ip: str | None, user_agent: str, referrer: str | None
    ) -> dict[str, Any] | None:
        """An event the server will take, or None (no address or agent, a URL too long)."""
        if len(url) > MAX_URL:
            url = url.split("?", 1)[0]
        if not ip or not user_agent or len(url) > MAX_URL:
            return None
        try:
            ip = str(ipaddress.ip_address(ip.strip()))
        except ValueError:
            return None
        event: dict[str, Any] = {
            "name": name,
            "url": url,
            "ip": ip,
            "user_agent": user_agent[:MAX_USER_AGENT],
        }
        if referrer and len(referrer) <= MAX_REFERRER:
            event["referrer"] = referrer
        return event

    def _url(self, environ: Environ, path: str) -> str:
        scheme = environ.get("wsgi.url_scheme", "http")
        host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "localhost")
        if self.proxy_count:
            scheme = _forwarded(environ.get("HTTP_X_FORWARDED_PROTO"), self.proxy_count) or scheme
            host = _forwarded(environ.get("HTTP_X_FORWARDED_HOST"), self.proxy_count) or host
        query = environ.get("QUERY_STRING")
        url = f"{scheme}://{host}{path or '/'}"
        return f"{url}?{query}" if query else url

    def _address(self, environ: Environ) -> str | None:
        if self.proxy_count:
            found = _forwarded(environ.get("HTTP_X_FORWARDED_FOR"), self.proxy_count)
            if found:
                return found
        address = environ.get("REMOTE_ADDR")
        return str(address) if address else None

    def _put(self, event: dict[str, Any]) -> bool:
        self._ensure_sender()
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            with self._lock:
                self.stats.dropped_full += 1
            return False
        with self._lock:
            self.stats.queued += 1
        return True

    def pending(self) -> list[dict[str, Any]]:
        """The events waiting to be sent (a copy; for tests and debugging)."""
        with self._queue.mutex:
            return list(self._queue.queue)

    # -- the sender ----------------------------------------------------------------------------

    def _ensure_sender(self) -> None:
        if self._pid != os.getpid():  # forked (a pre-fork server): the thread stayed behind
            self._pid, self._thread = os.getpid(), None
            self._queue = queue.Queue(maxsize=self._queue.maxsize)
            self._stop = threading.Event()
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="flask-tracking-client", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            batch = self._take()
            if batch:
                self._deliver(batch)

    def _take(self) -> list[dict[str, Any]]:
        try:
            first = self._queue.get(timeout=self.flush_interval)
        except queue.Empty:
            return []
        batch = [first]
        while len(batch) < self.batch_size:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _deliver(self, batch: list[dict[str, Any]]) -> None:
        """Send a batch until the server takes or refuses it (or the tracker closes)."""
        try:
            delay = 0.5
            while True:
                outcome = self._send(batch)
                if outcome != "retry":
                    with self._lock:
                        if outcome == "sent":
                            self.stats.sent += len(batch)
                        else:
                            self.stats.rejected += len(batch)
                    return
                with self._lock:
                    self.stats.retries += 1
                if self._stop.wait(delay):
                    return
                delay = min(delay * 2, self.max_backoff)
        finally:
            for _event in batch:
                self._queue.task_done()

    def _send(self, batch: list[dict[str, Any]]) -> str:
        request = urllib.request.Request(  # noqa: S310 - the server's URL, http(s)
            self.endpoint,
            data=json.dumps({"events": batch}).encode(),
            headers={
                "Authorization": f"Bearer {self.api_key}",
                "Content-Type": "application/json",
                "User-Agent": f"flask-tracking-client/{__version__}",
            },
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:  # noqa: S310
                answer.read()
                return "sent"
        except urllib.error.HTTPError as error:
            error.read()
            # Busy or away: try again. Refused (a bad key, a bad event): never again.
            return "retry" if error.code in (408, 429) or error.code >= 500 else "rejected"
        except (OSError, ValueError):  # refused, reset, timed out, unreachable
            return "retry"

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued has been sent (or refused); False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._queue.unfinished_tasks == 0:  # queued, taken and delivered: all done
                return True
            time.sleep(0.02)
        return False

    def close(self, timeout: float = 5.0) -> None:
        """Send what is queued (waiting at most `timeout` seconds), then stop the sender."""
        if self._thread is not None and self._thread.is_alive():
            self.flush(timeout)
        self._stop.set()


class _Observed:
    """The host's answer, passed through; the pageview is looked at once it is sent."""

    def __init__(self, result: Iterable[bytes], done: Callable[[], None]) -> None:
        self._result = result
        self._done = done

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._result)

    def close(self) -> None:
        try:
            close = getattr(self._result, "close", None)
            if close is not None:
                close()
        finally:
            self._done()


def _forwarded(value: str | None, hops: int) -> str | None:
    """The value a proxy `hops` away from us put in an X-Forwarded-* list (None if absent)."""
    if not value:
        return None
    items = [item.strip() for item in value.split(",")]
    return items[-hops] if len(items) >= hops else None
