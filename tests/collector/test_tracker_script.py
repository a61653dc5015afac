"""GET /js/tracker.js and its versioned URL: type, caching, versions, size."""

from __future__ import annotations

import gzip
import re

from flask import Flask
from flask.testing import FlaskClient

from flask_tracking.collector.views import tracker_url

# The script is served as is, comments and all: keep it under 2 KB (1.5 KB before A/B
# experiments, whose assignment and exposure it carries).
MAX_GZIPPED = 2048


def versioned_path(app: Flask) -> str:
    with app.test_request_context():
        url = tracker_url()
    match = re.fullmatch(r"http://localhost(/js/tracker\.[0-9a-f]{12}\.js)", url)
    assert match, url
    return match.group(1)


def test_the_plain_url_serves_the_script_cached_for_an_hour(client: FlaskClient) -> None:
    response = client.get("/js/tracker.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert response.headers["Cache-Control"] == "public, max-age=3600"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert b"/api/event" in response.data
    assert "Set-Cookie" not in response.headers


def test_the_versioned_url_serves_the_same_script_cached_for_a_year(
    app: Flask, client: FlaskClient
) -> None:
    response = client.get(versioned_path(app))
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert response.data == client.get("/js/tracker.js").data


def test_a_wrong_version_is_not_found(app: Flask, client: FlaskClient) -> None:
    right = versioned_path(app)
    wrong = right.replace(right[-15:-3], "0" * 12 if right[-15:-3] != "0" * 12 else "1" * 12)
    assert client.get(wrong).status_code == 404
    assert client.get("/js/tracker.latest.js").status_code == 404


def test_the_script_is_small_and_self_contained(client: FlaskClient) -> None:
    source = client.get("/js/tracker.js").data
    assert len(gzip.compress(source, compresslevel=9)) < MAX_GZIPPED
    text = source.decode()
    # No build step and no dependencies: nothing imported, nothing fetched but the collector.
    assert "import " not in text and "require(" not in text
    for storage in ("localStorage", "sessionStorage", "indexedDB", "document.cookie"):
        assert storage not in text
