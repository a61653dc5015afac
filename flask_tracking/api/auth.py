"""Who is calling: the bearer key, its rate limit, its scope and the sites it may see.

Keys travel only in the Authorization header. One sent in the URL (where proxies, logs and
browser history keep it) is refused even when valid, so the mistake is noticed at once.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from flask import current_app, g, request
from limits import parse
from werkzeug.wrappers import Response

from flask_tracking.api.errors import ApiError
from flask_tracking.extensions import limiter
from flask_tracking.tracking import access
from flask_tracking.tracking.models import Site
from flask_tracking.users import apikeys
from flask_tracking.users.models import ApiKey, User

SCHEME = "Bearer"
# Query parameters that look like an attempt to authenticate through the URL.
KEY_PARAMETERS = frozenset({"key", "api_key", "apikey", "token", "access_token", "auth"})


@dataclass(frozen=True, slots=True)
class Call:
    """An authorised request: the key, its user and the site of the path (if any)."""

    key: ApiKey
    user: User
    site: Site | None
    role: access.Role | None = None  # the key's user's role on the site

    def own_site(self) -> Site:
        """Return the path's site (operations on a site always have one)."""
        assert self.site is not None
        return self.site


def authorize(scope: str, site_id: int | None, *, events: bool = False) -> Call:
    """Authenticate, rate-limit and authorise the current request, or raise the ApiError."""
    refuse_key_in_url()
    key = bearer_key()
    rate_limit(key, events=events)
    if scope == apikeys.READ_WRITE and key.scope != apikeys.READ_WRITE:
        raise ApiError(
            403, "insufficient_scope", "This operation needs a key with the read-write scope."
        )
    site = role = None
    if site_id is not None:
        if key.site_id is not None and key.site_id != site_id:
            raise ApiError(404, "not_found", f"There is no site {site_id}.")
        try:  # the key acts with its user's role on the site (tracking/access.py)
            site, role = access.site_for(key.user_id, site_id)
        except access.Refusal as refusal:
            if refusal.status == 404:
                raise ApiError(404, "not_found", f"There is no site {site_id}.") from None
            raise ApiError(
                403,
                "forbidden",
                f"Your role on this site ({refusal.role}) does not allow this operation; "
                f"it needs {access.NEEDS[refusal.action]} or above.",
            ) from None
    apikeys.record_use(key)
    return Call(key, key.user, site, role)


def refuse_key_in_url() -> None:
    """Refuse a request that carries a key (or a key-like parameter) in its query string."""
    for name, value in request.args.items(multi=True):
        if name.lower() in KEY_PARAMETERS or apikeys.looks_like_key(value):
            raise ApiError(
                401,
                "key_in_url",
                "Send the API key in the Authorization header, never in the URL; "
                "a key that was sent in a URL may have been logged and should be revoked.",
                headers=_challenge("invalid_request"),
            )


def bearer_key() -> ApiKey:
    """Return the active key of the Authorization header, or raise a 401."""
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    if not header:
        raise ApiError(
            401,
            "unauthorized",
            "Send an API key as 'Authorization: Bearer <key>'.",
            headers=_challenge(None),
        )
    if scheme.lower() != SCHEME.lower() or not secret.strip():
        raise ApiError(
            401,
            "unauthorized",
            "The Authorization header must be 'Bearer <key>'.",
            headers=_challenge("invalid_request"),
        )
    key = apikeys.find_key(secret.strip())
    if key is None or not key.active:
        raise ApiError(
            401,
            "invalid_key",
            "This API key is unknown or has been revoked.",
            headers=_challenge("invalid_token"),
        )
    return key


def rate_limit(key: ApiKey, *, events: bool = False) -> None:
    """Count this request against the key's limit; raise a 429 when it is used up."""
    config = current_app.config
    if not config["RATELIMIT_ENABLED"]:
        return
    item = parse(str(config["API_EVENTS_RATE_LIMIT" if events else "API_RATE_LIMIT"]))
    bucket = ("api-events" if events else "api", key.key_hash[:32])
    allowed = limiter.limiter.hit(item, *bucket)
    stats = limiter.limiter.get_window_stats(item, *bucket)
    reset = max(0, math.ceil(stats.reset_time - time.time()))
    g.api_rate_limit = {
        "X-RateLimit-Limit": str(item.amount),
        "X-RateLimit-Remaining": str(max(0, stats.remaining)),
        "X-RateLimit-Reset": str(reset),
    }
    if not allowed:
        raise ApiError(
            429,
            "rate_limited",
            f"This key may make {item}; retry in {max(1, reset)} seconds.",
            headers={"Retry-After": str(max(1, reset))},
        )


def add_rate_limit_headers(response: Response) -> Response:
    """Tell the client how much of its key's limit is left (after_request of the blueprint)."""
    for name, value in g.get("api_rate_limit", {}).items():
        response.headers.setdefault(name, value)
    response.headers.setdefault("Cache-Control", "no-store")  # answers are private data
    return response


def _challenge(error: str | None) -> dict[str, str]:
    value = f'{SCHEME} realm="flask-tracking"'
    if error:
        value += f', error="{error}"'
    return {"WWW-Authenticate": value}
