"""/healthz (liveness) and /readyz (readiness) as JSON for load balancers and orchestrators;
/metrics in Prometheus's text format, when the operator turns it on."""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, abort, current_app, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from flask_tracking.ingest import current_ingest
from flask_tracking.ops.health import readiness
from flask_tracking.ops.metrics import exposition_registry

ops = Blueprint("ops", __name__)


def _uncached(response: Response, status: int) -> tuple[Response, int]:
    response.headers["Cache-Control"] = "no-store"
    return response, status


@ops.get("/healthz")
def healthz() -> tuple[Response, int]:
    """Liveness: the process answers. Nothing else is asked, so a database outage does not
    make an orchestrator restart healthy workers (that is what /readyz is for)."""
    return _uncached(jsonify(status="alive"), 200)


@ops.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Readiness: database reachable, migrations current, spool below its cap, writer alive.
    200 when all hold, else 503; the body says which check failed and what to do."""
    ready, body = readiness(current_app._get_current_object())  # type: ignore[attr-defined]
    return _uncached(jsonify(body), 200 if ready else 503)


@ops.get("/metrics")
def metrics() -> Response:
    """Every process's metrics, added up. Not found unless METRICS_ENABLED; behind
    `Authorization: Bearer METRICS_TOKEN` when a token is set."""
    config = current_app.config
    if not config["METRICS_ENABLED"]:
        abort(404)
    token = str(config.get("METRICS_TOKEN") or "")
    if token:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            response = jsonify(
                error={
                    "status": 401,
                    "code": "unauthorized",
                    "message": "Send the metrics token as Authorization: Bearer <token>.",
                    "details": {},
                }
            )
            response.status_code = 401
            response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    registry = exposition_registry(app, current_ingest().spool.directory)
    response = Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
    response.headers["Cache-Control"] = "no-store"
    return response
