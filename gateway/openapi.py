"""``/api/openapi.json``: the OpenAPI 3.1 document of the routes the running app serves, rendered
from what each route declares where it is defined (:mod:`channels.operations`), so the document
cannot drift from the code and lists only what is on. Request bodies are pydantic models or JSON
Schemas; a JSON body that does not validate is a 400 naming the field (:func:`read_body`). Every
error response is the project's one shape, ``{"error": {"code", "message", "details"}}``
(:data:`ERROR_SCHEMA`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from channels.base import json_response
from channels.operations import Body, Operation, Reply, Schema, SecurityScheme, declaration, route
from errors import TooLarge, UserError
from store import untrusted_json

M = TypeVar("M", bound=BaseModel)
MAX_BODY = 256 * 1024
TITLE = "After-sales backoffice API"
VERSION = "1.0.0"
DESCRIPTION = (
    "Tickets (售后工单), the to-claim pool, alerts, configuration, staff and audit. "
    "Sign in with `Authorization: Bearer <staff token>`, or from the console with its session "
    "cookie and the `X-CSRF-Token` header on requests that change something."
)
STAFF = SecurityScheme("bearer", {"type": "http", "scheme": "bearer", "description": "a staff API token"})
"""Staff sign-in (a bearer token, or the console's session cookie): every staff route."""

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "additionalProperties": False,
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "additionalProperties": False,
            "properties": {
                "code": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$", "description": "stable, snake_case"},
                "message": {"type": "string", "description": "for people; may change"},
                "details": {
                    "type": "object",
                    "description": "what else the code needs: `field`, `limit`, `retry_after`, `problems` …",
                },
            },
        }
    },
}
STATUS_TEXT = {
    400: "invalid input",
    401: "missing or invalid credentials",
    403: "not allowed for this caller",
    404: "not found",
    409: "conflicts with the current state",
    413: "the body is larger than this route takes",
    415: "unsupported media type",
    429: "too many requests; see Retry-After",
    503: "the gateway is starting, or a service it needs is down; retry later",
}


async def read_json_object(request: web.Request, limit: int = MAX_BODY) -> dict[str, Any]:
    """The request's JSON object (an empty body is ``{}``): :class:`~errors.TooLarge` over
    ``limit`` bytes, :class:`~store.untrusted_json.UntrustedJson` (``invalid_json`` …) if it is
    not JSON we take, ``invalid_payload`` if it is no object."""
    if request.content_length is not None and request.content_length > limit:
        raise TooLarge(f"the body is larger than {limit} bytes", limit=limit)
    raw = await request.read()
    if len(raw) > limit:
        raise TooLarge(f"the body is larger than {limit} bytes", limit=limit)
    data = untrusted_json.loads(raw or b"{}")
    if not isinstance(data, dict):
        raise UserError("expected a JSON object", code="invalid_payload")
    return data


async def read_body(request: web.Request, model: type[M]) -> M:
    data = await read_json_object(request)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(body)"
        raise UserError(f"{where}: {first['msg']}", code="invalid_field", field=where) from None


# -- the document -------------------------------------------------------------------------------


def routes() -> list[web.RouteDef]:
    """``GET /api/openapi.json`` for one app (call once per app): rendered on the first request,
    since an app's routes do not change once it serves."""
    rendered: list[dict[str, Any]] = []

    async def serve(request: web.Request) -> web.Response:
        if not rendered:
            rendered.append(document(request.app))
        return json_response(rendered[0])

    return [route(Operation("GET", "/api/openapi.json", "This document", "gateway", published=False), serve)]


def declared(app: web.Application) -> Iterator[tuple[web.AbstractRoute, Operation | None]]:
    """Every route ``app`` serves (but the HEADs aiohttp adds to GETs) with its declaration."""
    for served in app.router.routes():
        operation = declaration(served.handler)
        if served.method == "HEAD" and (operation is None or operation.method == "GET"):
            continue
        yield served, operation


def undeclared(app: web.Application) -> list[str]:
    """``METHOD path`` of each route made without a declaration, or whose declaration is of another route."""
    missing = []
    for served, operation in declared(app):
        info = served.resource.get_info() if served.resource is not None else {}
        path = info.get("formatter") or info.get("path")
        if operation is None or (operation.method, operation.path) != (served.method, path):
            missing.append(f"{served.method} {path}")
    return missing


def document(app: web.Application) -> dict[str, Any]:
    schemas: dict[str, Any] = {"Error": ERROR_SCHEMA}
    schemes: dict[str, Any] = {}
    paths: dict[str, Any] = {}
    for _, operation in declared(app):
        if operation is not None and operation.published:
            paths.setdefault(operation.path, {})[operation.method.lower()] = _operation(operation, schemas)
            schemes.update((scheme.name, dict(scheme.definition)) for scheme in operation.security)
    return {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": VERSION, "description": DESCRIPTION},
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": dict(sorted(schemes.items()))},
    }


def operation_id(operation: Operation) -> str:
    """``<method>_<path>``, braces dropped, ``/`` and ``-`` as ``_`` (``get_api_backoffice_tickets_ticket_id``)."""
    if operation.operation_id:
        return operation.operation_id
    words = operation.path.strip("/").replace("{", "").replace("}", "").replace("/", "_").replace("-", "_")
    return f"{operation.method.lower()}_{words or 'root'}"


def _operation(op: Operation, schemas: dict[str, Any]) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string", "maxLength": 128}}
        for name in _path_names(op.path)
    ]
    for param in op.params:
        rendered = {"name": param.name, "in": param.where, "required": param.required, "schema": dict(param.schema)}
        parameters.append(rendered | ({"description": param.description} if param.description else {}))
    spec: dict[str, Any] = {"summary": op.summary, "tags": [op.tag], "operationId": operation_id(op)}
    if op.description:
        spec["description"] = op.description
    if parameters:
        spec["parameters"] = parameters
    if op.body is not None:
        body = op.body if isinstance(op.body, Body) else Body({"application/json": op.body})
        spec["requestBody"] = {
            "required": True,
            "content": {kind: {"schema": _schema(schema, schemas)} for kind, schema in body.content.items()},
        } | ({"description": body.description} if body.description else {})
    spec["responses"] = {str(reply.status): _reply(reply, schemas) for reply in op.replies} | {
        str(status): _refusal(status, op.codes.get(status, ())) for status in op.errors
    }
    if op.security:
        spec["security"] = [{scheme.name: []} for scheme in op.security]
    return spec


def _reply(reply: Reply, schemas: dict[str, Any]) -> dict[str, Any]:
    if reply.media_type is None:
        return {"description": reply.description}
    default: Schema = {"type": "object"} if reply.media_type == "application/json" else {}
    schema = _schema(reply.schema if reply.schema is not None else default, schemas)
    return {"description": reply.description, "content": {reply.media_type: {"schema": schema}}}


def _refusal(status: int, codes: tuple[str, ...]) -> dict[str, Any]:
    text = STATUS_TEXT.get(status, "error")
    answer: dict[str, Any] = {
        "description": f"{text}: {', '.join(f'`{c}`' for c in codes)}" if codes else text,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    if codes:
        answer["x-error-codes"] = list(codes)
    return answer


def _schema(schema: Schema, schemas: dict[str, Any]) -> dict[str, Any]:
    """A JSON Schema as it is, or a model's under ``components.schemas`` (with its ``$defs``) by reference."""
    if not isinstance(schema, type):
        return dict(schema)
    rendered = schema.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(rendered.pop("$defs", {}))
    schemas[schema.__name__] = rendered
    return {"$ref": f"#/components/schemas/{schema.__name__}"}


def _path_names(path: str) -> list[str]:
    """The path's parameters: ``{plan_id}`` in ``/plans/{plan_id}.png`` too (a ``:regex`` dropped)."""
    return [chunk.split("}", 1)[0].split(":", 1)[0] for chunk in path.split("{")[1:]]
