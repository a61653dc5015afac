"""The API's errors: one exception carrying the envelope's fields, answered by errors.json_error."""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Response

from flask_tracking.errors import json_error


class ApiError(Exception):
    """Stop a request with a status, a machine-readable code, a message and details."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}
        self.headers = headers or {}

    def response(self) -> Response:
        """Return the error envelope with this error's headers."""
        response = json_error(self.status, self.code, self.message, self.details)
        response.headers.update(self.headers)
        return response


def invalid(details: dict[str, str], message: str = "The request is not valid.") -> ApiError:
    """Return the 400 that names each bad field or parameter."""
    return ApiError(400, "invalid_request", message, details)
