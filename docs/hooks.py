"""MkDocs hooks: the pages generated from the code, so they cannot drift from it.

- configuration.md: every setting of flask_tracking/config.py — its default, its environment
  variable and the comment above it — read with `ast` (nothing is imported or run).
- api-reference.md: every operation of the served OpenAPI document, rendered from the app's
  own /api/v1/openapi.json (the document the API validates requests with).
"""

from __future__ import annotations

import ast
import html
import json
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "flask_tracking" / "config.py"
PLAIN = {"SECRET_KEY", "SQLALCHEMY_DATABASE_URI"}  # also read without the prefix (see below)


def on_files(files: Files, config: Any) -> Files:
    files.append(File.generated(config, "configuration.md", content=configuration_page()))
    files.append(File.generated(config, "api-reference.md", content=api_reference_page()))
    return files


# -- configuration ---------------------------------------------------------------------------


def settings(source: str) -> dict[str, list[tuple[str, str, str]]]:
    """Per configuration class: (key, default as written, the comment about it)."""
    lines = source.splitlines()
    found: dict[str, list[tuple[str, str, str]]] = {}
    for node in ast.parse(source).body:
        if not isinstance(node, ast.ClassDef) or not node.name.endswith("Configuration"):
            continue
        rows = []
        head, last_line = "", -1  # the commented key of a block of keys, where it ended
        for statement in node.body:
            target = _target(statement)
            if target is None or not target.isupper():
                continue
            value = getattr(statement, "value", None)
            default = ast.get_source_segment(source, value) if value is not None else ""
            comment = _comment(lines, statement)
            if comment and lines[statement.lineno - 2].strip().startswith("#"):
                head = target
            elif not comment and head and statement.lineno == last_line + 1:
                comment = f"See {head}."
            last_line = statement.end_lineno or statement.lineno
            rows.append((target, " ".join((default or "").split()), comment))
        found[node.name] = rows
    return found


def _target(statement: ast.stmt) -> str | None:
    if isinstance(statement, ast.Assign) and isinstance(statement.targets[0], ast.Name):
        return statement.targets[0].id
    if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
        return statement.target.id
    return None


def _comment(lines: list[str], statement: ast.stmt) -> str:
    """The comment lines right above a statement, and the one at the end of its line."""
    above = []
    number = statement.lineno - 2
    while number >= 0 and lines[number].strip().startswith("#"):
        above.insert(0, lines[number].strip().lstrip("#").strip())
        number -= 1
    end = lines[(statement.end_lineno or statement.lineno) - 1]
    inline = end.split("  # ", 1)[1].strip() if "  # " in end else ""
    return " ".join(part for part in (*above, inline) if part)


def _cell(text: str) -> str:
    return html.escape(text, quote=False).replace("|", "&#124;")


def configuration_page() -> str:
    classes = settings(CONFIG.read_text(encoding="utf-8"))
    out = [
        "# Configuration reference",
        "",
        "Generated from `flask_tracking/config.py` when this site is built. Every setting can be",
        "given in the environment as `FLASK_TRACKING_<KEY>` (parsed as JSON where it can be:",
        '`true`, `5`, `"text"`); `SECRET_KEY`, `DATABASE_URL` and `EVENTS_DATABASE_URL` are',
        "also read as they are. `FLASK_TRACKING_CONFIG` chooses the class: `development`",
        "(default), `production` or `test`; the environment wins over the class.",
        "",
        "| key | default | what it does |",
        "| --- | --- | --- |",
    ]
    for key, default, comment in classes.get("BaseConfiguration", []):
        out.append(f"| `{key}` | `{_cell(default)}` | {_cell(comment)} |")
    for name, rows in classes.items():
        if name == "BaseConfiguration" or not rows:
            continue
        out += ["", f"## {name}", "", "| key | value | |", "| --- | --- | --- |"]
        out += [f"| `{key}` | `{_cell(value)}` | {_cell(note)} |" for key, value, note in rows]
    return "\n".join(out) + "\n"


# -- API reference ---------------------------------------------------------------------------


def openapi_document() -> dict[str, Any]:
    from flask_tracking import create_app
    from flask_tracking.config import TestConfiguration

    app = create_app(TestConfiguration)
    document: dict[str, Any] = json.loads(app.test_client().get("/api/v1/openapi.json").data)
    return document


def api_reference_page() -> str:
    document = openapi_document()
    out = [
        f"# API reference ({document['info']['version']})",
        "",
        "Generated from the OpenAPI document the app serves at `/api/v1/openapi.json` (the",
        "models that validate each request). [The API](api.md) has the walk-through with",
        "examples; the running app shows this reference at `/api/v1/docs`.",
    ]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            out += ["", f"## `{method.upper()} /api/v1{path}`", ""]
            out.append(f"**{_cell(operation.get('summary', ''))}**")
            if operation.get("description"):
                out += ["", operation["description"].strip()]
            parameters = operation.get("parameters", [])
            if parameters:
                out += ["", "| parameter | in | required | description |"]
                out.append("| --- | --- | --- | --- |")
                for parameter in parameters:
                    out.append(
                        f"| `{parameter['name']}` | {parameter['in']} | "
                        f"{'yes' if parameter.get('required') else 'no'} | "
                        f"{_cell(' '.join(parameter.get('description', '').split()))} |"
                    )
            body = operation.get("requestBody", {}).get("content", {})
            for media, content in body.items():
                out += ["", f"Body ({media}): `{_schema_name(content.get('schema', {}))}`"]
            answers = [
                f"`{status}` {_cell(answer.get('description', ''))}"
                for status, answer in operation.get("responses", {}).items()
            ]
            out += ["", "Answers: " + "; ".join(answers)]
    return "\n".join(out) + "\n"


def _schema_name(schema: dict[str, Any]) -> str:
    reference = schema.get("$ref", "")
    return reference.rsplit("/", 1)[-1] if reference else str(schema.get("type", "object"))
