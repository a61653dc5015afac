"""The API described: /api/v1/docs (the reference page) and /api/v1/openapi.json.

The page is checked against the document it is rendered from, and the document against the
operations the server declares and routes, so neither can silently lose an operation.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import validate

from flask_tracking.api.spec import OPERATIONS, PREFIX

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
DESCRIBING = ("api.openapi", "api.reference")  # the document and this page: not operations
STATIC = Path(__file__).resolve().parents[2] / "flask_tracking" / "static"


@pytest.fixture
def doc(client: FlaskClient) -> dict[str, Any]:
    """The OpenAPI document, as served."""
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    document: dict[str, Any] = response.get_json()
    return document


@pytest.fixture
def page(client: FlaskClient) -> str:
    """The reference page, fetched without logging in."""
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    return response.get_data(as_text=True)


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Yield (path, method, operation) for every operation of the document."""
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in HTTP_METHODS:
                yield path, method, op


def section(page: str, operation_id: str) -> str:
    """Return the HTML of one operation's section of the page."""
    found = re.search(rf'<section id="op-{re.escape(operation_id)}".*?</section>', page, re.S)
    assert found, f"no section for {operation_id}"
    return found.group(0)


def resolve(doc: dict[str, Any], ref: str) -> Any:
    """Return what a local $ref points at (KeyError if nothing)."""
    assert ref.startswith("#/"), f"{ref} is not a local reference"
    target: Any = doc
    for part in ref[2:].split("/"):
        target = target[part.replace("~1", "/").replace("~0", "~")]
    return target


def refs(node: Any) -> Iterator[str]:
    """Yield every $ref anywhere in a JSON value."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def enums(node: Any) -> Iterator[list[Any]]:
    """Yield every enum list anywhere in a JSON value."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "enum" and isinstance(value, list):
                yield value
            else:
                yield from enums(value)
    elif isinstance(node, list):
        for value in node:
            yield from enums(value)


class Assets(HTMLParser):
    """Collect what a page loads: scripts, stylesheets and other linked or embedded resources."""

    def __init__(self) -> None:
        super().__init__()
        self.loaded: list[tuple[str, str]] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "script":
            self.scripts += 1
        if tag == "link":
            self.loaded.append((tag, values.get("href", "")))
        elif tag in ("script", "img", "iframe", "source", "embed", "audio", "video"):
            self.loaded.append((tag, values.get("src", "")))
        elif tag == "object":
            self.loaded.append((tag, values.get("data", "")))


# The reference page -------------------------------------------------------------------------


def test_reference_is_public_and_titled(page: str, doc: dict[str, Any]) -> None:
    assert doc["info"]["title"] in page
    assert 'href="/login/"' in page  # rendered in the site's layout, for a visitor logged out


def test_reference_shows_every_operation(page: str, doc: dict[str, Any]) -> None:
    seen = 0
    for path, method, op in operations(doc):
        html = section(page, op["operationId"])
        assert f">{method.upper()}<" in html, (method, path)
        assert f'<code class="api-path">{path}</code>' in html, (method, path)
        assert op["summary"] in html.replace("&#39;", "'")
        seen += 1
        # ...and the contents link to it, under its tag.
        assert f'href="#op-{op["operationId"]}"' in page
    assert seen == len(OPERATIONS) + 3  # and the collector's three (event, visit GET and POST)
    for tag in doc["tags"]:
        assert f'id="tag-{tag["name"].lower()}"' in page


def test_reference_details_parameters_bodies_and_responses(page: str, doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    for _path, _method, op in operations(doc):
        html = section(page, op["operationId"])
        for parameter in op.get("parameters", []):
            assert f"<code>{parameter['name']}</code>" in html, (op["operationId"], parameter)
        body = op.get("requestBody", {}).get("content", {}).get("application/json")
        if body is not None:
            schema = schemas[body["schema"]["$ref"].split("/")[-1]]
            for name in schema["properties"]:
                assert f"<code>{name}</code>" in html, (op["operationId"], name)
        for status in op["responses"]:
            assert f"<code>{status}</code>" in html, (op["operationId"], status)
        if op.get("security") == []:  # the collector's endpoints: no key at all
            assert "Authorization" not in html
            assert "none: anyone may call it" in html
            continue
        assert "Authorization: Bearer $FT_KEY" in html
        scope = re.search(r"scope `([\w-]+)`", op["description"])
        assert scope, f"{op['operationId']} does not say its scope"
        assert f"<dt>Scope</dt><dd><code>{scope.group(1)}</code></dd>" in html


def test_reference_explains_keys_errors_and_rate_limits(page: str) -> None:
    assert 'href="/settings/#api-keys"' in page
    assert "key_in_url" in page
    assert 'id="errors"' in page and "ErrorBody" in page
    for header in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"):
        assert header in page
    assert "Retry-After" in page and "429" in page
    assert 'href="/api/v1/openapi.json"' in page
    assert "docs/api.md" in page


def test_reference_escapes_descriptions(page: str, doc: dict[str, Any]) -> None:
    # The info description says `Authorization: Bearer <key>`: text, never markup.
    assert "<key>" in doc["info"]["description"]
    assert "<key>" not in page
    assert "Bearer &lt;key&gt;" in page
    # Markdown code spans become <code>, their content still escaped.
    assert "<code>Authorization: Bearer &lt;key&gt;</code>" in page


def test_reference_summarises_long_enums(page: str, doc: dict[str, Any]) -> None:
    longest = max(enums(doc), key=len)
    assert len(longest) > 100  # the time zones
    shown = [value for value in longest if f"<code>{value}</code>" in page]
    assert len(shown) <= 5, shown
    assert "an IANA time zone name" in page


def test_reference_loads_no_external_assets(page: str) -> None:
    assets = Assets()
    assets.feed(page)
    # The reference needs no script; the layout's theme switch (our own file) is the only one.
    assert assets.scripts == 1
    assert [url for tag, url in assets.loaded if tag == "script"] == ["/static/theme.js"]
    stylesheets = []
    for tag, url in assets.loaded:
        assert not re.match(r"^(https?:)?//", url), (tag, url)
        if url.endswith(".css"):
            stylesheets.append(url)
    assert "/static/api.css" in stylesheets
    for url in stylesheets:
        css = (STATIC / url.removeprefix("/static/")).read_text()
        assert "@import" not in css
        assert not re.search(r"url\(\s*['\"]?(https?:)?//", css), url


def test_reference_is_served_to_a_logged_in_user(
    owner: Any, auth: Any, client: FlaskClient
) -> None:
    assert auth.login(owner.email).status_code == 302
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    assert 'href="/settings/"' in response.get_data(as_text=True)


# The OpenAPI document -----------------------------------------------------------------------


def test_openapi_is_public_json(client: FlaskClient) -> None:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_openapi_is_structurally_valid(doc: dict[str, Any]) -> None:
    assert re.fullmatch(r"3\.1\.\d+", doc["openapi"])
    assert doc["info"]["title"] and doc["info"]["version"]
    for ref in set(refs(doc)):
        resolve(doc, ref)  # every $ref resolves
    declared_tags = {tag["name"] for tag in doc["tags"]}
    schemes = doc["components"]["securitySchemes"]
    for requirement in doc["security"]:
        assert set(requirement) <= set(schemes)
    ids = []
    for path, method, op in operations(doc):
        # The API's operations, and the collector's (public, described beside them).
        assert path.startswith(PREFIX + "/") or (
            path in ("/api/event", "/sites/{site_id}/visit") and op["security"] == []
        )
        ids.append(op["operationId"])
        assert op["summary"]
        assert set(op["tags"]) <= declared_tags
        placeholders = set(re.findall(r"\{(\w+)\}", path))
        in_path = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
        assert in_path == placeholders, (method, path)
        keys = [(p["name"], p["in"]) for p in op.get("parameters", [])]
        assert len(keys) == len(set(keys)), (method, path)
        for parameter in op.get("parameters", []):
            assert parameter["in"] in ("path", "query", "header", "cookie")
            assert "schema" in parameter
            if parameter["in"] == "path":
                assert parameter["required"] is True
        assert op["responses"]
        for status, answer in op["responses"].items():
            assert status == "default" or re.fullmatch(r"[1-5]\d\d", status), status
            assert answer["description"]
        if method == "get":
            assert "requestBody" not in op
    assert len(ids) == len(set(ids)), "operationId must be unique"


def test_openapi_declares_the_status_codes_served(doc: dict[str, Any]) -> None:
    for declared in OPERATIONS:
        op = doc["paths"][PREFIX + declared.path][declared.method.lower()]
        assert op["operationId"] == declared.name
        assert op["tags"] == [declared.tag]
        statuses = set(op["responses"])
        assert str(declared.status) in statuses
        assert {str(status) for status in declared.errors} <= statuses
        assert "401" in statuses and "429" in statuses
        if declared.body is not None:
            assert {"400", "413", "415"} <= statuses
            assert "requestBody" in op
        for status in ("429", "503"):
            if status in statuses:
                assert "Retry-After" in op["responses"][status]["headers"]


def test_openapi_documents_every_api_route(app: Flask, doc: dict[str, Any]) -> None:
    undocumented = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(PREFIX + "/") or rule.endpoint in DESCRIBING:
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        for method in rule.methods or ():
            if method in ("HEAD", "OPTIONS"):
                continue
            if method.lower() not in doc["paths"].get(path, {}):
                undocumented.append(f"{method} {path}")
    assert not undocumented


def test_openapi_passes_openapi_spec_validator(doc: dict[str, Any]) -> None:
    """The document is valid OpenAPI 3.1, its schemas valid JSON Schema 2020-12."""
    validate(doc)
