"""GeoIP lookups in a Free-GeoIP-compatible JSON web service, cached in memory."""

from __future__ import annotations

import http.client
import json
import logging
import threading
import urllib.error
import urllib.request
from urllib.parse import quote, urlsplit

from cachetools import TTLCache

from flask_tracking.geo.data import GeoData, clean_coordinate, clean_text, public_address

logger = logging.getLogger("flask_tracking.geo")

CACHE_TTL_SECONDS = 24 * 60 * 60
MAX_ANSWER_BYTES = 64 * 1024

# Field names used by freegeoip/ipstack, ipapi.co and ip-api.com, in order of preference.
_TEXT_FIELDS: dict[str, tuple[str, ...]] = {
    "city": ("city",),
    "postal_code": ("zip_code", "zip", "postal", "postal_code"),
    "region": ("region_name", "regionName", "region"),
    "country_code": ("country_code", "countryCode"),
    "country_name": ("country_name", "country"),
}


class ServiceError(Exception):
    """The service answered, but not with a usable location."""


# Failures that are the service's or the network's fault: logged without a traceback.
_EXPECTED_ERRORS = (OSError, ValueError, http.client.HTTPException, RecursionError, ServiceError)


class HTTPProvider:
    """Lookups in a Free-GeoIP-compatible service, with a short timeout and a one-day cache."""

    def __init__(
        self,
        url_template: str,
        timeout: float = 0.5,
        cache_size: int = 10_000,
        opener: urllib.request.OpenerDirector | None = None,
    ) -> None:
        self.url_template = checked_url_template(url_template)
        self.timeout = timeout
        self._opener = opener or build_opener()
        self._cache: TTLCache[str, GeoData | None] = TTLCache(cache_size, CACHE_TTL_SECONDS)
        self._lock = threading.Lock()

    def lookup(self, ip: str) -> GeoData | None:
        """Return the service's answer for a public address; failures give None, uncached."""
        address = public_address(ip)
        if address is None:
            return None
        with self._lock:
            try:
                return self._cache[address]
            except KeyError:
                pass
        # The network call happens outside the lock so one slow answer cannot stall every
        # visit; two concurrent misses for one address may both ask, which is harmless.
        try:
            data = self._fetch(address)
        except Exception as error:
            # Never let geolocation cost a visit; the IP stays out of the log on purpose.
            expected = isinstance(error, _EXPECTED_ERRORS)
            logger.warning("GeoIP service lookup failed: %r", error, exc_info=not expected)
            return None
        with self._lock:
            self._cache[address] = data
        return data

    def _fetch(self, address: str) -> GeoData | None:
        url = self.url_template.replace("{ip}", quote(address, safe=":."))
        request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
        try:
            response = self._opener.open(request, timeout=self.timeout)
        except urllib.error.HTTPError as error:
            error.close()  # release the connection now rather than at garbage collection
            raise ServiceError(f"HTTP status {error.code}") from None
        with response:
            if response.status != 200:
                raise ServiceError(f"HTTP status {response.status}")
            body = response.read(MAX_ANSWER_BYTES + 1)
        if len(body) > MAX_ANSWER_BYTES:
            raise ServiceError(f"answer larger than {MAX_ANSWER_BYTES} bytes")
        return parse_answer(json.loads(body))


def checked_url_template(url_template: object) -> str:
    """Return the template if it is an http(s) URL containing {ip}; raise ValueError if not."""
    message = "GEOIP_HTTP_URL must be an http:// or https:// URL containing {ip}"
    if not isinstance(url_template, str) or "{ip}" not in url_template:
        raise ValueError(f"{message}, got {url_template!r}")
    parts = urlsplit(url_template)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{message}, got {url_template!r}")
    return url_template


def build_opener() -> urllib.request.OpenerDirector:
    """Return an opener that speaks only HTTP(S), so a redirect cannot reach file: or ftp:."""
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler(),
        urllib.request.UnknownHandler(),
        urllib.request.HTTPHandler(),
        urllib.request.HTTPSHandler(),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPRedirectHandler(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    return opener


def parse_answer(payload: object) -> GeoData | None:
    """Turn a decoded JSON answer into GeoData; None when it holds no location at all."""
    if not isinstance(payload, dict):
        raise ServiceError(f"answer is a JSON {type(payload).__name__}, not an object")
    # ipapi.co says {"error": true, ...}, ipstack {"success": false}, ip-api {"status": "fail"}.
    if payload.get("error") or payload.get("success") is False or payload.get("status") == "fail":
        reason = payload.get("reason") or payload.get("message") or "no reason given"
        raise ServiceError(f"service reported an error: {reason}")
    data = GeoData(
        city=_first_text(payload, _TEXT_FIELDS["city"]),
        postal_code=_first_text(payload, _TEXT_FIELDS["postal_code"]),
        region=_first_text(payload, _TEXT_FIELDS["region"]),
        country_code=_first_text(payload, _TEXT_FIELDS["country_code"]),
        country_name=_first_text(payload, _TEXT_FIELDS["country_name"]),
        latitude=_first_coordinate(payload, ("latitude", "lat"), 90),
        longitude=_first_coordinate(payload, ("longitude", "lon"), 180),
    )
    return None if data == GeoData() else data


def _first_text(payload: dict[object, object], keys: tuple[str, ...]) -> str | None:
    return next((t for t in map(clean_text, map(payload.get, keys)) if t is not None), None)


def _first_coordinate(
    payload: dict[object, object], keys: tuple[str, ...], limit: float
) -> float | None:
    values = (clean_coordinate(payload.get(key), limit) for key in keys)
    return next((v for v in values if v is not None), None)
