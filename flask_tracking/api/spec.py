"""The API's operations: one declaration serves the route, validates the request and writes the
OpenAPI document, so the document cannot drift from what the server accepts.

    @operation("GET", "/sites/{site_id}/stats/aggregate", scope=READ, query=AggregateQuery,
               response=AggregateResult, summary="…")
    def aggregate(call: Call, query: AggregateQuery) -> AggregateResult: ...

The wrapper runs, in order: refuse a key in the URL, authenticate the bearer key (401), apply
its rate limit (429), check its scope (403), find the site (404), validate the query string or
JSON body with the pydantic models (400, 413, 415), then the view. A view returns a model
(serialised as JSON with the operation's status) or a ready Response (streams, 204).
"""

from __future__ import annotations

import functools
import inspect
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, get_args, get_origin

from flask import Blueprint, current_app, has_app_context, request
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema
from werkzeug.wrappers import Response

from flask_tracking.api import collection
from flask_tracking.api.auth import Call, add_rate_limit_headers, authorize
from flask_tracking.api.errors import ApiError, invalid
from flask_tracking.api.schemas import ErrorEnvelope, TimeZoneName
from flask_tracking.billing import gate
from flask_tracking.config import BaseConfiguration
from flask_tracking.tracking.forms import timezone_names

PREFIX = "/api/v1"
# The document's sections, in this order.
TAGS_ABOUT = {
    "Sites": "The sites a key may see: list, add, read, change, delete.",
    "Goals": "A site's goals (conversions): list, add, read, change, delete.",
    "Funnels": "A site's funnels (goals in order): list, add, read with results, change, delete.",
    "Experiments": "A site's A/B experiments: list, add, read, change, delete, and results.",
    "Stats": "The dashboard's reports, with the same periods, time zones and filters.",
    "Reports": "A site's scheduled email reports: list, add, read, stop.",
    "Alerts": "A site's alert rules, their channels (email, signed webhook, Slack) and "
    "deliveries: list, add, remove, send a test.",
    "Events": "Server-side events, through the collector's durable pipeline.",
    "Export": "Raw stored events: pages of JSON, or one streamed CSV or NDJSON file.",
}
TAGS = tuple(TAGS_ABOUT)
ViewFunction = TypeVar("ViewFunction", bound=Callable[..., Any])

# What each error status means on every operation that can answer it.
ERROR_MEANINGS = {
    400: "The query string or body is not valid; `details` names each bad field.",
    401: "No API key, an unknown one, a revoked one, or a key sent in the URL.",
    402: "The site's account is over its plan's monthly events and its plan hides reports "
    "until it upgrades (billing; events are still collected).",
    403: "The key's scope, or its user's role on the site, does not allow this operation "
    "(or the account's plan does not include the API: `plan_limit`).",
    404: "No such site (or goal), or not one this key may see (the same answer for both).",
    413: "The body is larger than the server accepts.",
    414: "The URL (path and query string) is longer than the server reads.",
    409: "The request conflicts with the data: e.g. deleting a goal a funnel uses.",
    415: "The body is not `application/json`.",
    429: "The key's rate limit is used up; retry after `Retry-After` seconds.",
    503: "The collector is overloaded; retry after `Retry-After` seconds.",
}
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}}


# Operations that read reports: a plan over quota that hides reports refuses them (402).
REPORT_TAGS = frozenset({"Stats", "Export"})


@dataclass(frozen=True)
class Operation:
    """One method on one path, as served and as documented."""

    method: str
    path: str  # OpenAPI template, relative to PREFIX: /sites/{site_id}
    name: str
    summary: str
    description: str
    tag: str
    scope: str
    query: type[BaseModel] | None
    body: type[BaseModel] | None
    response: type[BaseModel] | None
    status: int
    media: Mapping[str, str] = field(default_factory=dict)  # extra response types → description
    errors: tuple[int, ...] = ()

    @property
    def rule(self) -> str:
        """Return the Flask rule of the path: {site_id} becomes <id:site_id>."""
        return re.sub(r"\{(\w+)\}", r"<id:\1>", self.path)

    @property
    def path_params(self) -> list[str]:
        """Return the names of the path's parameters."""
        return re.findall(r"\{(\w+)\}", self.path)


OPERATIONS: list[Operation] = []


def operation(
    method: str,
    path: str,
    *,
    summary: str,
    scope: str,
    tag: str,
    query: type[BaseModel] | None = None,
    body: type[BaseModel] | None = None,
    response: type[BaseModel] | None = None,
    status: int = 200,
    media: Mapping[str, str] | None = None,
    errors: tuple[int, ...] = (),
) -> Callable[[ViewFunction], ViewFunction]:
    """Declare an operation of the API; see the module's docstring."""

    def register(view: ViewFunction) -> ViewFunction:
        standard: tuple[int, ...] = (400, 401, 414, 429)
        # a read key; a key limited to one site, adding another; a role too low; a plan
        # without the API (billing)
        standard += (403,)
        if tag in REPORT_TAGS:
            standard += (402,)  # over quota on a plan that hides reports (billing)
        if re.search(r"\{\w+\}", path):
            standard += (404,)
        if body is not None:
            standard += (413, 415)
        op = Operation(
            method=method,
            path=path,
            name=view.__name__,
            summary=summary,
            description=inspect.cleandoc(view.__doc__ or ""),
            tag=tag,
            scope=scope,
            query=query,
            body=body,
            response=response,
            status=status,
            media=dict(media or {}),
            errors=tuple(sorted({*standard, *errors})),
        )
        OPERATIONS.append(op)

        @functools.wraps(view)
        def endpoint(**path_args: int) -> Response:
            call = authorize(op.scope, path_args.get("site_id"), events=op.tag == "Events")
            _billing(call, op.tag)
            # The path's other parameters (a goal's id…) go to the view by name.
            arguments: dict[str, Any] = {
                name: value for name, value in path_args.items() if name != "site_id"
            }
            if op.query is not None:
                arguments["query"] = parse_query(op.query, request.args)
            elif request.args:
                unknown = {name: "Unknown parameter." for name in request.args}
                raise invalid(unknown, "This operation takes no query parameters.")
            if op.body is not None:
                arguments["body"] = parse_body(op.body)
            result = view(call, **arguments)
            if isinstance(result, Response):
                return result
            return json_response(result, op.status)

        api.add_url_rule(op.rule, view.__name__, endpoint, methods=[method])
        return view

    return register


def _billing(call: Call, tag: str) -> None:
    """What the account's plan refuses (nothing while billing is off): the API itself, and
    reports while over quota on a plan that hides them."""
    owner = call.site.owner_id if call.site is not None else call.user.id
    refusal = gate.api_refusal(owner)
    if refusal:
        raise ApiError(403, "plan_limit", refusal)
    if tag in REPORT_TAGS:
        refusal = gate.reports_refusal(call.site)
        if refusal:
            raise ApiError(402, "over_quota", refusal)


api = Blueprint("api", __name__, url_prefix=PREFIX)
api.after_request(add_rate_limit_headers)


@api.errorhandler(ApiError)
def api_error(error: ApiError) -> Response:
    """Answer an ApiError with the error envelope."""
    return error.response()


def json_response(model: BaseModel, status: int = 200) -> Response:
    """Serialise a response model as the body of a JSON response."""
    return Response(
        model.model_dump_json(by_alias=True), status=status, mimetype="application/json"
    )


def parse_query(model: type[BaseModel], args: Any) -> Any:
    """Validate the query string with `model` (repeated names for list fields); 400 otherwise."""
    lists = {
        info.alias or name for name, info in model.model_fields.items() if _is_list(info.annotation)
    }
    data = {key: args.getlist(key) if key in lists else args.get(key) for key in args}
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise invalid(_details(error, "query"), "The query string is not valid.") from None


def parse_body(model: type[BaseModel]) -> Any:
    """Read and validate a JSON body: 415 if not JSON, 413 if too large, 400 if not valid."""
    if request.mimetype != "application/json":
        raise ApiError(415, "unsupported_media_type", "Send the body as application/json.")
    limit = int(current_app.config["MAX_API_BODY"])
    if (request.content_length or 0) > limit:
        raise ApiError(413, "too_large", f"The body is over {limit} bytes.")
    raw = request.stream.read(limit + 1)
    if len(raw) > limit:
        raise ApiError(413, "too_large", f"The body is over {limit} bytes.")
    try:
        # The standard library's parser, as /api/event's: it decodes an escaped lone surrogate,
        # which the field checks then name (pydantic's JSON parser refuses the whole body).
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise ApiError(400, "invalid_json", "The body is not valid JSON.") from None
    try:
        return model.model_validate(data, strict=True)
    except ValidationError as error:
        raise invalid(_details(error, "body"), "The body is not valid.") from None


def _is_list(annotation: Any) -> bool:
    if get_origin(annotation) is list:
        return True
    return any(get_origin(arg) is list for arg in get_args(annotation))


def _details(error: ValidationError, whole: str) -> dict[str, str]:
    """Return {field: message} from pydantic's errors (the first message per field); a
    problem of no one field (a rule across fields) is named after the `whole` input."""
    details: dict[str, str] = {}
    for problem in error.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in problem["loc"]) or whole
        message = str(problem["msg"])
        if problem["type"] == "extra_forbidden":
            message = "Unknown field or parameter."
        message = message.removeprefix("Value error, ")
        details.setdefault(where, message)
    return details


def openapi_document() -> dict[str, Any]:
    """Return the OpenAPI 3.1 document of every declared operation."""
    models: list[tuple[type[BaseModel], Any]] = [(ErrorEnvelope, "serialization")]
    models += [(model, "validation") for model in collection.MODELS]
    for op in OPERATIONS:
        if op.body is not None:
            models.append((op.body, "validation"))
        if op.response is not None:
            models.append((op.response, "serialization"))
    names, definitions = models_json_schema(
        list(dict.fromkeys(models)), ref_template="#/components/schemas/{model}"
    )
    paths: dict[str, dict[str, Any]] = {}
    for op in sorted(OPERATIONS, key=lambda op: TAGS.index(op.tag)):
        paths.setdefault(PREFIX + op.path, {})[op.method.lower()] = _operation(op, names)
    schema_of = {model: names[(model, "validation")]["$ref"] for model in collection.MODELS}
    paths.update(
        collection.paths(schema_of, names[(ErrorEnvelope, "serialization")], _query_parameters)
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Flask-Tracking API",
            "version": "1.0",
            "summary": "Sites, statistics, server-side events and raw exports.",
            "description": (
                "Send an API key (create one on your settings page) as "
                "`Authorization: Bearer <key>`. Every answer is JSON, every timestamp ISO 8601 "
                "in UTC, and every error the same envelope: "
                '`{"error": {"status", "code", "message", "details"}}`. '
                f"URLs (path and query string) may be at most {_url_limit()} bytes long; "
                "a longer one is answered 414."
            ),
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "tags": [
            *({"name": tag, "description": about} for tag, about in TAGS_ABOUT.items()),
            {"name": collection.TAG, "description": collection.ABOUT},
        ],
        "paths": paths,
        "components": {
            "schemas": _shared_enums(definitions.get("$defs", {})),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key from the settings page, e.g. `ftk_…`.",
                }
            },
        },
    }


def _url_limit() -> int:
    """Return the longest URL the app reads (the configured one when an app is running)."""
    if has_app_context():
        return int(current_app.config["MAX_REQUEST_URL_LENGTH"])
    return int(BaseConfiguration.MAX_REQUEST_URL_LENGTH)


def _shared_enums(schemas: dict[str, Any]) -> dict[str, Any]:
    """Write the ~600 time zone names once, as a component every zone field refers to."""
    zones = list(timezone_names())

    def replace(node: Any) -> Any:
        if isinstance(node, dict):
            if node.get("enum") == zones:
                rest = {k: v for k, v in node.items() if k not in ("enum", "type", "maxLength")}
                return {"$ref": f"#/components/schemas/{TimeZoneName}", **rest}
            return {key: replace(value) for key, value in node.items()}
        if isinstance(node, list):
            return [replace(item) for item in node]
        return node

    shared = {name: replace(schema) for name, schema in schemas.items()}
    shared[TimeZoneName] = {
        "type": "string",
        "enum": zones,
        "description": "An IANA time zone name, e.g. UTC or Europe/Berlin.",
    }
    return shared


def _operation(op: Operation, names: Mapping[Any, Any]) -> dict[str, Any]:
    envelope = names[(ErrorEnvelope, "serialization")]
    described: dict[str, Any] = {
        "operationId": op.name,
        "summary": op.summary,
        "description": op.description + f"\n\nNeeds a key with scope `{op.scope}`.",
        "tags": [op.tag],
        "x-scope": op.scope,
        "parameters": [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
            }
            for name in op.path_params
        ]
        + _query_parameters(op.query),
        "responses": {},
    }
    if op.body is not None:
        described["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": names[(op.body, "validation")]}},
        }
    content: dict[str, Any] = {}
    if op.response is not None:
        content["application/json"] = {"schema": names[(op.response, "serialization")]}
    for media, description in op.media.items():
        content[media] = {"schema": {"type": "string", "description": description}}
    success: dict[str, Any] = {"description": "Success." if op.status != 204 else "Done."}
    if content:
        success["content"] = content
    described["responses"][str(op.status)] = success
    for status in op.errors:
        answer: dict[str, Any] = {
            "description": ERROR_MEANINGS[status],
            "content": {"application/json": {"schema": envelope}},
        }
        if status in (429, 503):
            answer["headers"] = RETRY_AFTER
        described["responses"][str(status)] = answer
    described["responses"]["default"] = {
        "description": "Any other error, in the same envelope.",
        "content": {"application/json": {"schema": envelope}},
    }
    return described


def _query_parameters(model: type[BaseModel] | None) -> list[dict[str, Any]]:
    if model is None:
        return []
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    required = set(schema.get("required", ()))
    parameters = []
    for name, prop in schema.get("properties", {}).items():
        # A query string has no null: an optional parameter is simply left out.
        options = [option for option in prop.pop("anyOf", []) if option != {"type": "null"}]
        if len(options) == 1:
            prop.update(options[0])
        elif options:
            prop["anyOf"] = options
        if prop.get("default", ...) is None:
            del prop["default"]
        description = prop.pop("description", None)
        prop.pop("title", None)
        parameter: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": prop,
        }
        if description:
            parameter["description"] = description
        if prop.get("type") == "array":
            parameter["style"], parameter["explode"] = "form", True
        parameters.append(parameter)
    return parameters


__all__ = ["OPERATIONS", "PREFIX", "Call", "Operation", "api", "openapi_document", "operation"]
