"""Test infrastructure, not product code: a Stripe-compatible API on loopback for the Stripe
provider's tests.

`localstripe` (PyPI) answers most of Stripe's API (customers, products, plans, payment
methods, subscriptions, invoices) but not Checkout Sessions nor the customer portal. This
front answers those two calls itself, with the object shapes Stripe documents (only the
fields the app reads, plus `id`, `object`, `url`), and forwards every other request to
localstripe unchanged.
"""

from __future__ import annotations

import json
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def localstripe() -> Iterator[str]:
    """Run localstripe on a free loopback port; yield its base URL."""
    port = _free_port()
    command = shutil.which("localstripe", path=str(Path(sys.executable).parent))
    assert command, "localstripe is a dev dependency (make test installs it)"
    process = subprocess.Popen(
        [command, "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("localstripe did not start") from None
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


class Front:
    """The front's state: the sessions it made (so tests can read what the app asked for)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.checkouts: list[dict[str, Any]] = []
        self.portals: list[dict[str, Any]] = []


def _handler(front: Front) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: Any) -> None:
            pass

        def _answer(self, status: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _forward(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            data = self.rfile.read(length) if length else None
            request = urllib.request.Request(front.upstream + self.path, data=data, method=method)
            for name in ("Authorization", "Content-Type", "Idempotency-Key", "Stripe-Version"):
                if self.headers.get(name):
                    request.add_header(name, self.headers[name])
            try:
                with urllib.request.urlopen(request, timeout=30) as answer:
                    self._answer(answer.status, answer.read())
            except urllib.error.HTTPError as error:
                self._answer(error.code, error.read())

        def do_GET(self) -> None:
            self._forward("GET")

        def do_DELETE(self) -> None:
            self._forward("DELETE")

        def do_POST(self) -> None:
            path = self.path.split("?")[0]
            if path not in ("/v1/checkout/sessions", "/v1/billing_portal/sessions"):
                self._forward("POST")
                return
            length = int(self.headers.get("Content-Length") or 0)
            params = dict(parse_qsl(self.rfile.read(length).decode()))
            if path == "/v1/checkout/sessions":
                session_id = "cs_test_" + secrets.token_hex(12)
                session = {
                    "id": session_id,
                    "object": "checkout.session",
                    "mode": params.get("mode"),
                    "customer": params.get("customer"),
                    "client_reference_id": params.get("client_reference_id"),
                    "success_url": params.get("success_url"),
                    "cancel_url": params.get("cancel_url"),
                    "status": "open",
                    "subscription": None,
                    "url": f"https://checkout.stripe.test/c/pay/{session_id}",
                    "params": params,
                }
                front.checkouts.append(session)
            else:
                session = {
                    "id": "bps_" + secrets.token_hex(12),
                    "object": "billing_portal.session",
                    "customer": params.get("customer"),
                    "return_url": params.get("return_url"),
                    "url": "https://billing.stripe.test/p/session/" + secrets.token_hex(8),
                }
                front.portals.append(session)
            self._answer(200, json.dumps(session).encode())

    return Handler


@contextmanager
def stripe_front(upstream: str) -> Iterator[tuple[str, Front]]:
    """Serve the front on a free loopback port; yield its base URL and state."""
    front = Front(upstream)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(front))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", front
    finally:
        server.shutdown()
        server.server_close()
