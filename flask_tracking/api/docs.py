"""The API described: /api/v1/openapi.json (OpenAPI 3.1) and /api/v1/docs (a reference page).

Both are public and built from the same operation registry and pydantic models that serve
and validate requests, once per process.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from flask import render_template
from werkzeug.wrappers import Response

from flask_tracking.api.spec import api, openapi_document


@cache
def document() -> dict[str, Any]:
    """Return the OpenAPI document (built once: the operations are fixed at import)."""
    return openapi_document()


@api.get("/openapi.json")
def openapi() -> Response:
    """Serve the OpenAPI document."""
    response = Response(json.dumps(document(), indent=1), mimetype="application/json")
    response.headers["Access-Control-Allow-Origin"] = "*"  # let other tools fetch it
    return response


@api.get("/docs")
def reference() -> str:
    """Render the API reference from the OpenAPI document."""
    return render_template("api/reference.html", doc=document())
