"""What an HTTP route declares about itself, where it is defined: the OpenAPI facts of one operation.

Every route of the gateway is made with :func:`route`, which carries an :class:`Operation` on the
handler; ``gateway.openapi`` renders ``/api/openapi.json`` from the routes the running app serves,
so the document cannot drift from the code and lists only what is on (a channel that is off has
no route). Error answers are the project's one shape (``{"error": {"code", "message",
"details"}}``); an operation names the statuses it refuses with and, where its own code picks
them, the codes.

It lives under ``channels`` because the channels and the phone line declare routes too and must
not import the gateway; it knows aiohttp and pydantic only.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Schema = type[BaseModel] | Mapping[str, Any]
"""A pydantic model (its JSON Schema goes to ``components.schemas``) or a JSON Schema as it is."""

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
TEXT = {"type": "string"}
BINARY = {"type": "string", "format": "binary"}


@dataclass(frozen=True, slots=True)
class Param:
    """A query or header parameter (path parameters come from the path itself)."""

    name: str
    schema: Mapping[str, Any]
    description: str = ""
    required: bool = False
    where: Literal["query", "header"] = "query"


@dataclass(frozen=True, slots=True)
class Body:
    """A request body: one schema per content type it takes."""

    content: Mapping[str, Schema]
    description: str = ""


def json_body(schema: Schema, max_bytes: int | None = None) -> Body:
    return Body({JSON: schema}, f"at most {max_bytes} bytes" if max_bytes else "")


@dataclass(frozen=True, slots=True)
class Reply:
    """A successful answer. ``schema`` None: any JSON object for JSON, anything for other types;
    ``media_type`` None: no body (a 204, a websocket's 101)."""

    status: int = 200
    media_type: str | None = JSON
    schema: Schema | None = None
    description: str = "OK"


@dataclass(frozen=True, slots=True)
class SecurityScheme:
    """How a caller proves who it is (an OpenAPI security scheme, under its name)."""

    name: str
    definition: Mapping[str, Any]


def twilio_form(sid: str, **fields: Mapping[str, Any]) -> Body:
    """A Twilio webhook's form: its resource id (``MessageSid``, ``CallSid``), the account and the
    two numbers every Twilio webhook posts, and the fields of this one."""
    common: dict[str, Mapping[str, Any]] = {
        sid: {"type": "string", "maxLength": 64},
        "AccountSid": {"type": "string", "maxLength": 64},
        "From": {"type": "string", "maxLength": 32},
        "To": {"type": "string", "maxLength": 32},
    }
    return Body({FORM: {"type": "object", "required": [sid, "From"], "properties": {**common, **fields}}})


TWILIO_SIGNATURE = SecurityScheme(
    "twilioSignature",
    {
        "type": "apiKey",
        "in": "header",
        "name": "X-Twilio-Signature",
        "description": "HMAC-SHA1 of the public URL and the form fields with TWILIO_AUTH_TOKEN",
    },
)
"""Twilio's webhook signature, shared by the SMS channel and the phone line."""


@dataclass(frozen=True, slots=True)
class Operation:
    method: str
    path: str
    summary: str
    tag: str
    body: Schema | Body | None = None
    """A bare schema is a JSON body."""
    params: tuple[Param, ...] = ()
    replies: tuple[Reply, ...] = (Reply(),)
    errors: tuple[int, ...] = ()
    """Statuses it refuses with, each answered in the one error shape."""
    codes: Mapping[int, tuple[str, ...]] = field(default_factory=dict)
    """The error codes its own code answers under a status (listed with that status)."""
    security: tuple[SecurityScheme, ...] = ()
    description: str = ""
    operation_id: str | None = None
    """Only where a published id does not follow the path (see ``gateway.openapi``)."""
    published: bool = True
    """False: left out of the document: pages and assets for people, the live websockets, the document
    itself, and routes not published yet (each says why where it is declared)."""

    def __post_init__(self) -> None:
        if unlisted := set(self.codes) - set(self.errors):
            raise ValueError(f"{self.method} {self.path}: codes for statuses it does not list: {sorted(unlisted)}")


_DECLARED: weakref.WeakKeyDictionary[Handler, Operation] = weakref.WeakKeyDictionary()


def route(operation: Operation, handler: Handler) -> web.RouteDef:
    """The aiohttp route of ``operation``, its handler carrying the declaration (a GET answers HEAD too)."""

    @functools.wraps(handler)
    async def declared_handler(request: web.Request) -> web.StreamResponse:
        return await handler(request)

    _DECLARED[declared_handler] = operation
    if operation.method == "GET":
        return web.get(operation.path, declared_handler)
    return web.route(operation.method, operation.path, declared_handler)


def declaration(handler: Any) -> Operation | None:
    """The operation a route's handler was declared with (None: made without :func:`route`)."""
    try:
        return _DECLARED.get(handler)
    except TypeError:  # not weakly referenceable: not one of ours
        return None
