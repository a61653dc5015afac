"""Contextual logging: request id, method, path, client IP and user id on every record."""

from __future__ import annotations

import json
import logging
import re
import uuid
from logging.handlers import TimedRotatingFileHandler

from flask import Flask, g, has_request_context, request
from flask.logging import default_handler
from werkzeug.wrappers import Response

CONTEXT_FIELDS = ("request_id", "method", "path", "ip", "user_id")
TEXT_FORMAT = (
    "%(asctime)s\t%(levelname)s\t%(name)s\t%(request_id)s\t%(method)s\t%(path)s\t%(ip)s\t"
    "%(user_id)s\t%(message)s"
)
ERROR_FILE_FORMAT = (
    "-" * 72 + "\n%(asctime)s %(levelname)s in %(name)s [%(pathname)s:%(lineno)d]\n"
    "Request id: %(request_id)s\nMethod:     %(method)s\nPath:       %(path)s\n"
    "IP:         %(ip)s\nUser id:    %(user_id)s\n\n%(message)s\n"
)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_HANDLER_MARK = "_flask_tracking_handler"


def escape(value: object) -> str:
    """Make a value from a request safe for one log line: no CR, LF or other controls."""
    return "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in str(value)
    )


class ContextFilter(logging.Filter):
    """Add the request's context to every record; '-' outside a request."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Set the context attributes and let the record through."""
        for name, value in request_context().items():
            setattr(record, name, value)
        record.msg = escape(record.getMessage())
        record.args = None
        return True


def request_context() -> dict[str, str]:
    """Return the context fields of the current request, escaped."""
    if not has_request_context():
        return dict.fromkeys(CONTEXT_FIELDS, "-")
    return {
        "request_id": escape(g.get("request_id", "-")),
        "method": escape(request.method),
        "path": escape(request.path),
        "ip": escape(request.remote_addr or "-"),
        "user_id": str(_user_id()),
    }


def _user_id() -> int:
    from flask_login import current_user

    try:
        return int(current_user.id) if current_user.is_authenticated else -1
    except Exception:
        return -1


class JSONFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        """Serialise the record with its context fields."""
        entry = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **{name: getattr(record, name, "-") for name in CONTEXT_FIELDS},
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def init_app(app: Flask) -> None:
    """Configure the app's loggers and the request-id hooks."""
    # app.logger is the "flask_tracking" logger, so every module's logger propagates to it.
    for logger in (app.logger,):
        for handler in [h for h in logger.handlers if getattr(h, _HANDLER_MARK, False)]:
            logger.removeHandler(handler)
            handler.close()
        # Flask attaches its own stderr handler when no handler is configured yet; it would
        # print every record a second time, unescaped and without the context fields.
        logger.removeHandler(default_handler)
        level = app.config["LOG_LEVEL"]
        logger.setLevel(level.upper() if isinstance(level, str) else level)
        logger.propagate = False
        console = logging.StreamHandler()
        console.setFormatter(
            JSONFormatter()
            if str(app.config["LOG_FORMAT"]).lower() == "json"
            else logging.Formatter(TEXT_FORMAT)
        )
        _install(logger, console)
        if app.config.get("ERROR_LOG_PATH"):
            errors = TimedRotatingFileHandler(
                app.config["ERROR_LOG_PATH"],
                when="midnight",
                backupCount=7,
                encoding="utf-8",
                delay=True,
            )
            errors.setLevel(logging.ERROR)
            errors.setFormatter(logging.Formatter(ERROR_FILE_FORMAT))
            _install(logger, errors)
    app.before_request(_assign_request_id)
    app.after_request(_echo_request_id)


def _install(logger: logging.Logger, handler: logging.Handler) -> None:
    handler.addFilter(ContextFilter())
    setattr(handler, _HANDLER_MARK, True)
    logger.addHandler(handler)


def _assign_request_id() -> None:
    incoming = request.headers.get("X-Request-ID", "")
    # fullmatch, not match: "$" would also accept a trailing newline, which then breaks the
    # response header the id is echoed in.
    g.request_id = incoming if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex


def _echo_request_id(response: Response) -> Response:
    response.headers["X-Request-ID"] = g.get("request_id", "")
    return response
