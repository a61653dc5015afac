"""Contextual logging: every record says which request (and user) it belongs to, safely."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from logging.handlers import TimedRotatingFileHandler
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.logging import default_handler

from flask_tracking.users.models import User

PASSWORD = "correct horse battery"
TEXT_FIELDS = (
    "asctime",
    "levelname",
    "name",
    "request_id",
    "method",
    "path",
    "ip",
    "user_id",
    "message",
)
FRESH_ID = re.compile(r"^[0-9a-f]{32}$")


def _own_handlers(app: Flask) -> list[logging.Handler]:
    """The logger's handlers without the ones pytest attaches to non-propagating loggers."""
    return [h for h in app.logger.handlers if not type(h).__module__.startswith("_pytest")]


def _console(app: Flask) -> logging.StreamHandler[Any]:
    """The app's one console handler (file handlers are StreamHandlers too: exclude them)."""
    consoles = [h for h in app.logger.handlers if type(h) is logging.StreamHandler]
    assert len(consoles) == 1, app.logger.handlers
    return consoles[0]


@contextmanager
def captured(app: Flask) -> Iterator[io.StringIO]:
    """Swap a StringIO into the console handler for the duration of the block."""
    console = _console(app)
    stream = io.StringIO()
    previous = console.setStream(stream)
    try:
        yield stream
    finally:
        console.setStream(previous)


def parse_text(line: str) -> dict[str, str]:
    """Split one line of the text format into its named, tab-separated fields."""
    values = line.split("\t")
    assert len(values) == len(TEXT_FIELDS), line
    return dict(zip(TEXT_FIELDS, values, strict=True))


def lines_with(stream: io.StringIO, needle: str) -> list[str]:
    return [line for line in stream.getvalue().splitlines() if needle in line]


def _logging_app(app_factory: Any, **overrides: Any) -> Flask:
    """A test app with settings, plus routes that log, forge and fail."""
    return _add_routes(app_factory(**overrides))


def _add_routes(app: Flask) -> Flask:
    """Add routes that log, forge and fail to a test app."""

    @app.route("/log")
    def log() -> str:
        app.logger.info("from the app logger")
        logging.getLogger("flask_tracking.some.module").warning("from a module logger")
        return "ok"

    # The default converter, [^/]+, matches CR and LF; <path:> (".*?") would not.
    @app.route("/forge/<rest>")
    def forge(rest: str) -> str:
        app.logger.warning("literal\r\nFAKE\tINFO\tforged line")
        app.logger.warning("argument %s", "x\r\nFAKE\u2028FAKE2\x85FAKE3")
        app.logger.warning("path was %s", rest)
        return "ok"

    @app.route("/boom")
    def boom() -> str:
        app.logger.info("about to fail")
        raise RuntimeError("kaboom")

    return app


@pytest.fixture
def log_app(app: Flask) -> Flask:
    """The `app` fixture (the one make_user writes to) with the logging routes."""
    return _add_routes(app)


def test_records_in_a_request_carry_the_request_context(log_app: Flask) -> None:
    with captured(log_app) as stream:
        response = log_app.test_client().get("/log?x=1", headers={"X-Request-ID": "req-123"})
    assert response.status_code == 200
    records = [
        parse_text(line)
        for line in stream.getvalue().splitlines()
        if "from the app logger" in line or "from a module logger" in line
    ]
    assert len(records) == 2
    for record in records:
        assert record["request_id"] == "req-123"
        assert record["method"] == "GET"
        assert record["path"] == "/log"  # the path, without the query string
        assert record["ip"] == "127.0.0.1"
        assert record["user_id"] == "-1"
    assert {r["name"] for r in records} == {"flask_tracking", "flask_tracking.some.module"}
    assert {r["levelname"] for r in records} == {"INFO", "WARNING"}


def test_user_id_is_the_logged_in_users_id(log_app: Flask, make_user: Any) -> None:
    user: User = make_user(email="logger@example.com")  # make_user works on the `app` fixture
    client = log_app.test_client()
    response = client.post("/login/", data={"email": "logger@example.com", "password": PASSWORD})
    assert response.status_code == 302
    with captured(log_app) as stream:
        client.get("/log", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    (line,) = lines_with(stream, "from the app logger")
    record = parse_text(line)
    assert record["user_id"] == str(user.id)
    assert record["user_id"] != "-1"
    assert record["ip"] == "203.0.113.9"


def test_failed_login_is_logged_with_the_anonymous_user(log_app: Flask, make_user: Any) -> None:
    make_user(email="victim@example.com")
    with captured(log_app) as stream:
        response = log_app.test_client().post(
            "/login/", data={"email": "victim@example.com", "password": "wrong password"}
        )
    assert response.status_code == 200
    (line,) = lines_with(stream, "failed login")
    record = parse_text(line)
    assert record["user_id"] == "-1"
    assert (record["method"], record["path"]) == ("POST", "/login/")


def test_outside_a_request_the_context_fields_are_dashes(log_app: Flask) -> None:
    with captured(log_app) as stream:
        log_app.logger.warning("no context at all")
        with log_app.app_context():
            log_app.logger.warning("app context only")
    for needle in ("no context at all", "app context only"):
        (line,) = lines_with(stream, needle)
        record = parse_text(line)
        for field in ("request_id", "method", "path", "ip", "user_id"):
            assert record[field] == "-", (needle, field)


def test_a_valid_incoming_request_id_is_used_and_echoed(log_app: Flask) -> None:
    incoming = "edge-7f3a.b_c:42"
    with captured(log_app) as stream:
        response = log_app.test_client().get("/log", headers={"X-Request-ID": incoming})
    assert response.headers["X-Request-ID"] == incoming
    (line,) = lines_with(stream, "from the app logger")
    assert parse_text(line)["request_id"] == incoming


@pytest.mark.parametrize(
    "incoming",
    [
        "a" * 129,
        "has space",
        "abc\r\nInjected: yes",
        "abc\n",  # a trailing newline: "$" alone would let it through
        "abc\r",
        "semi;colon",
        "",
    ],
)
def test_an_invalid_request_id_is_replaced_by_a_fresh_one(log_app: Flask, incoming: str) -> None:
    # Raw environ: werkzeug's test client refuses to build headers with CR or LF in them.
    with captured(log_app) as stream:
        response = log_app.test_client().get(
            "/log", environ_overrides={"HTTP_X_REQUEST_ID": incoming}
        )
    assert response.status_code == 200
    echoed = response.headers["X-Request-ID"]
    assert FRESH_ID.match(echoed), echoed
    assert echoed != incoming
    (line,) = lines_with(stream, "from the app logger")
    assert parse_text(line)["request_id"] == echoed


def test_every_request_gets_its_own_id(log_app: Flask) -> None:
    client = log_app.test_client()
    ids = {client.get("/log").headers["X-Request-ID"] for _ in range(3)}
    assert len(ids) == 3
    assert all(FRESH_ID.match(i) for i in ids)


def test_the_request_id_is_echoed_on_error_responses(log_app: Flask) -> None:
    client = log_app.test_client()
    with captured(log_app):
        missing = client.get("/no/such/page", headers={"X-Request-ID": "r-404"})
        failed = client.get("/boom", headers={"X-Request-ID": "r-500"})
    assert (missing.status_code, missing.headers["X-Request-ID"]) == (404, "r-404")
    assert (failed.status_code, failed.headers["X-Request-ID"]) == (500, "r-500")


def test_cr_and_lf_cannot_forge_a_second_log_line(log_app: Flask) -> None:
    with captured(log_app) as stream:
        response = log_app.test_client().get("/forge/%0D%0AFAKE%09x")
    assert response.status_code == 200
    output = stream.getvalue()
    assert "\r" not in output
    lines = output.splitlines()  # also splits on \u2028, \x85 and the other line breaks
    assert len(lines) == 3, lines
    assert all(line.count("\t") == len(TEXT_FIELDS) - 1 for line in lines)
    literal, argument, path = (parse_text(line) for line in lines)
    assert literal["message"] == "literal\\r\\nFAKE\\tINFO\\tforged line"
    assert argument["message"] == "argument x\\r\\nFAKE\\u2028FAKE2\\x85FAKE3"
    assert path["path"] == "/forge/\\r\\nFAKE\\tx"
    assert path["message"] == "path was \\r\\nFAKE\\tx"
    assert output.count("FAKE\\tINFO") == 1


def test_flasks_default_handler_is_not_left_attached(app_factory: Any) -> None:
    # Outside pytest (no handler on the root logger) Flask adds default_handler to the app's
    # logger; it would print every record again, unescaped and without context.
    logger = logging.getLogger("flask_tracking")
    logger.addHandler(default_handler)
    try:
        app: Flask = app_factory()
        assert default_handler not in app.logger.handlers
    finally:
        logger.removeHandler(default_handler)


def test_creating_apps_again_does_not_stack_handlers(app_factory: Any) -> None:
    first: Flask = app_factory()
    count = len(_own_handlers(first))
    second: Flask = app_factory()
    assert len(_own_handlers(second)) == count == 1
    assert second.logger.propagate is False


def test_log_level_setting(app_factory: Any) -> None:
    app = _logging_app(app_factory, LOG_LEVEL="warning")  # case-insensitive, as from the env
    assert app.logger.level == logging.WARNING
    with captured(app) as stream:
        app.test_client().get("/log")
    assert "from the app logger" not in stream.getvalue()
    assert "from a module logger" in stream.getvalue()


def test_json_format_is_one_object_per_line_with_the_context(app_factory: Any) -> None:
    app = _logging_app(app_factory, LOG_FORMAT="json")
    client = app.test_client()
    with captured(app) as stream:
        client.get("/log", headers={"X-Request-ID": "json-1"})
        client.get("/forge/%0D%0AFAKE")
        app.logger.warning("outside")
    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(entries) == 6  # 2 from /log, 3 from /forge, 1 outside: nothing forged
    keys = {"time", "level", "logger", "message", "request_id", "method", "path", "ip", "user_id"}
    assert all(keys <= entry.keys() for entry in entries)
    first = entries[0]
    assert first["message"] == "from the app logger"
    assert first["level"] == "INFO"
    assert first["logger"] == "flask_tracking"
    assert (first["request_id"], first["method"], first["path"]) == ("json-1", "GET", "/log")
    assert (first["ip"], first["user_id"]) == ("127.0.0.1", "-1")
    assert entries[2]["message"] == "literal\\r\\nFAKE\\tINFO\\tforged line"
    assert entries[-1]["message"] == "outside"
    assert entries[-1]["request_id"] == entries[-1]["user_id"] == "-"


def test_json_format_includes_the_exception(app_factory: Any) -> None:
    app = _logging_app(app_factory, LOG_FORMAT="json")
    with captured(app) as stream:
        response = app.test_client().get("/boom")
    assert response.status_code == 500
    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    (error,) = [e for e in entries if e["level"] == "ERROR"]
    assert error["message"] == "unhandled exception"
    assert "RuntimeError: kaboom" in error["exception"]
    assert error["path"] == "/boom"


@pytest.fixture
def error_log_app(app_factory: Any, tmp_path: Path) -> Iterator[tuple[Flask, Path]]:
    path = tmp_path / "errors.log"
    app = _logging_app(app_factory, ERROR_LOG_PATH=str(path))
    yield app, path
    for handler in [h for h in app.logger.handlers if isinstance(h, TimedRotatingFileHandler)]:
        app.logger.removeHandler(handler)
        handler.close()


def _error_file_handler(app: Flask) -> TimedRotatingFileHandler:
    files = [h for h in app.logger.handlers if isinstance(h, TimedRotatingFileHandler)]
    assert len(files) == 1, app.logger.handlers
    return files[0]


def test_error_log_file_rotates_at_midnight_keeping_seven(
    error_log_app: tuple[Flask, Path],
) -> None:
    app, path = error_log_app
    handler = _error_file_handler(app)
    assert handler.when == "MIDNIGHT"
    assert handler.backupCount == 7
    assert handler.level == logging.ERROR
    assert Path(handler.baseFilename) == path


def test_errors_go_to_the_error_file_with_their_context(
    error_log_app: tuple[Flask, Path],
) -> None:
    app, path = error_log_app
    client = app.test_client()
    with captured(app):  # keep the console copy out of the test output
        assert client.get("/log").status_code == 200
        response = client.get("/boom?q=1", headers={"X-Request-ID": "boom-1"})
    assert response.status_code == 500
    _error_file_handler(app).flush()
    content = path.read_text(encoding="utf-8")
    assert "ERROR in flask_tracking [" in content
    assert "Request id: boom-1\n" in content
    assert "Method:     GET\n" in content
    assert "Path:       /boom\n" in content
    assert "IP:         127.0.0.1\n" in content
    assert "User id:    -1\n" in content
    assert "unhandled exception" in content
    assert "Traceback (most recent call last)" in content
    assert "RuntimeError: kaboom" in content
    # INFO and WARNING records stay on the console.
    assert "about to fail" not in content
    assert "from the app logger" not in content
    assert "from a module logger" not in content
    assert content.count("Request id:") == 1


def test_without_error_log_path_there_is_no_file_handler(log_app: Flask) -> None:
    assert not [h for h in log_app.logger.handlers if isinstance(h, logging.FileHandler)]
