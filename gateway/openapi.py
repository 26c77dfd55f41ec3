"""A small registry of JSON API operations that serves both the aiohttp routes and their
OpenAPI 3.1 document, so the document cannot drift from the code: request bodies are pydantic
models (their JSON Schema is the document's), and a body that does not validate is a 400 naming
the field. Every error response is the project's one shape, ``{"error": {"code", "message",
"details"}}`` (:data:`ERROR_SCHEMA`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from errors import TooLarge, UserError
from store import untrusted_json

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
M = TypeVar("M", bound=BaseModel)
MAX_BODY = 256 * 1024


@dataclass(frozen=True, slots=True)
class QueryParam:
    name: str
    schema: dict[str, Any]
    description: str = ""
    required: bool = False


@dataclass(frozen=True, slots=True)
class Operation:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    body: type[BaseModel] | None = None
    query: tuple[QueryParam, ...] = ()
    success: int = 200
    errors: tuple[int, ...] = (400, 401, 403, 404)
    authenticated: bool = True
    description: str = ""
    success_type: str = "application/json"
    """The success response's content type (``text/csv`` for the exports)."""


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
_STATUS_TEXT = {
    400: "invalid input",
    401: "missing or invalid token",
    403: "not allowed for your roles or queues",
    404: "not found",
    409: "conflicts with the current state",
    413: "body too large",
    429: "too many attempts; try again later",
    503: "the gateway is starting",
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


@dataclass(slots=True)
class ApiSpec:
    title: str
    version: str
    description: str = ""
    operations: list[Operation] = field(default_factory=list)

    def add(self, operation: Operation) -> None:
        self.operations.append(operation)

    def routes(self) -> list[web.RouteDef]:
        return [web.route(op.method, op.path, op.handler) for op in self.operations]

    def document(self) -> dict[str, Any]:
        schemas: dict[str, Any] = {"Error": ERROR_SCHEMA}
        paths: dict[str, Any] = {}
        for op in self.operations:
            parameters: list[dict[str, Any]] = [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string", "maxLength": 128}}
                for name in _path_names(op.path)
            ]
            parameters += [
                {
                    "name": q.name,
                    "in": "query",
                    "required": q.required,
                    "schema": q.schema,
                    "description": q.description,
                }
                for q in op.query
            ]
            spec: dict[str, Any] = {
                "summary": op.summary,
                "tags": [op.tag],
                "operationId": _operation_id(op),
                "parameters": parameters,
                "responses": {
                    str(op.success): {
                        "description": "OK",
                        "content": {
                            op.success_type: {
                                "schema": {"type": "object"} if op.success_type == "application/json" else {}
                            }
                        },
                    },
                    **{
                        str(code): {
                            "description": _STATUS_TEXT.get(code, "error"),
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                        }
                        for code in op.errors
                    },
                },
            }
            if op.description:
                spec["description"] = op.description
            if op.authenticated:
                spec["security"] = [{"bearer": []}]
            if op.body is not None:
                schema = op.body.model_json_schema(ref_template="#/components/schemas/{model}")
                for name, definition in schema.pop("$defs", {}).items():
                    schemas[name] = definition
                schemas[op.body.__name__] = schema
                spec["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{op.body.__name__}"}}},
                }
            paths.setdefault(op.path, {})[op.method.lower()] = spec
        return {
            "openapi": "3.1.0",
            "info": {"title": self.title, "version": self.version, "description": self.description},
            "paths": paths,
            "components": {
                "schemas": schemas,
                "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "a staff API token"}},
            },
        }


def _operation_id(op: Operation) -> str:
    words = op.path.strip("/").replace("{", "").replace("}", "").replace("/", "_").replace("-", "_")
    return f"{op.method.lower()}_{words}"


def _path_names(path: str) -> list[str]:
    names = []
    for part in path.split("/"):
        if part.startswith("{") and part.endswith("}"):
            names.append(part[1:-1].split(":")[0])
    return names
