"""A real HTTP server on loopback for tests that need one (browsers, Schemathesis)."""

from __future__ import annotations

import json
import threading
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server


class QuietHandler(WSGIRequestHandler):
    """No access log lines in the test output."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


class EnvelopeHandler(QuietHandler):
    """Also answer the errors the HTTP server raises before the app sees the request (a
    request line over 64 KiB is a 414) in the app's JSON error envelope, as the app answers
    everything under /api/ — so a fuzzer's huge URLs test the app's contract, not the
    development server's HTML error page."""

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        text = message or self.responses.get(code, ("Error",))[0]
        body = json.dumps(
            {"error": {"status": code, "code": "http_error", "message": text, "details": {}}}
        ).encode()
        self.send_response(code, message)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and code >= 200 and code not in (204, 304):
            self.wfile.write(body)


def buffered(app: Any) -> Any:
    """Run the app's response to the end and close it before the server writes a byte.

    Werkzeug's development server skips the iterable's close() when the client drops the
    connection mid-response (a browser abandoning a favicon, say): the file behind a static
    response is then left to the garbage collector, whose ResourceWarning fails the test that
    happens to be running. Buffering costs nothing here — no response of the app is endless.
    """

    def wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        iterable = app(environ, start_response)
        try:
            return [b"".join(iterable)]
        finally:
            close = getattr(iterable, "close", None)
            if close is not None:
                close()

    return wsgi


class LiveServer:
    """A WSGI app on an ephemeral loopback port, served from a thread."""

    def __init__(self, app: Any, handler: type[WSGIRequestHandler] = QuietHandler) -> None:
        self.server: BaseWSGIServer = make_server(
            "127.0.0.1", 0, buffered(app), threaded=True, request_handler=handler
        )
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
