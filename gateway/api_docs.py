"""The OpenAPI description of the routes that are not served through the ``gateway.openapi``
registry: the channels' webhooks, ``/health``, the agent API, photo OCR and route planning.
``/api/openapi.json`` is the registry's document plus these, each listed only when the running
app serves it (a channel that is off has no route, so it is not in the document).

Owns request schemas, size limits, security schemes and the status codes of those routes as
clients see them; must not know how the handlers work (they live in ``channels/``, ``ivr/``
and ``gateway/``), so a contract change there must be mirrored here — the fuzz test
(``tests/test_api_fuzz.py``) checks the two agree.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel

from backoffice.routing.pickups import PickupRequest
from channels.app_im import MAX_USER_CHARS
from channels.rest import MAX_MESSAGE_ID_CHARS, MAX_SENDER_CHARS
from gateway.agent_api import MAX_BODY as AGENT_MAX_BODY
from gateway.ocr_routes import MAX_JSON_BYTES as OCR_MAX_JSON
from gateway.routes_api import ActualRequest, PlanRequest, ReplanRequest
from gateway.settings import Settings
from media_ocr.engines import ENGINE_NAMES
from media_ocr.pipeline import MAX_IMAGE_BYTES
from store.models import MAX_TEXT_CHARS

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
ERROR = {"$ref": "#/components/schemas/Error"}
ID = {"type": "string", "minLength": 1, "maxLength": 64}

SECURITY_SCHEMES: dict[str, Any] = {
    "downstreamSignature": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Signature",
        "description": 'sha256=hex HMAC-SHA256 of "<X-Signature-Timestamp>.<raw body>" with the system\'s shared '
        "secret (PAYMENT_CENTRE_SECRET, WAREHOUSE_SECRET, COURIER_SECRET); the timestamp must be within "
        "DOWNSTREAM_CALLBACK_WINDOW_SECONDS (docs/downstream.md)",
    },
    "restToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "REST_WEBHOOK_TOKEN, when the gateway sets one (the shop backend's token)",
    },
    "telegramSecret": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Telegram-Bot-Api-Secret-Token",
        "description": "TELEGRAM_WEBHOOK_SECRET, given to Telegram with setWebhook",
    },
    "twilioSignature": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Twilio-Signature",
        "description": "HMAC-SHA1 of the public URL and the form fields with TWILIO_AUTH_TOKEN",
    },
    "appUserToken": {
        "type": "apiKey",
        "in": "query",
        "name": "token",
        "description": "hex HMAC-SHA256(APP_IM_SECRET, '<user>:<expires>'), with the user and expires parameters",
    },
}


def _errors(*codes: int) -> dict[str, Any]:
    text = {
        400: "invalid input",
        401: "missing or invalid credentials",
        403: "not allowed",
        404: "not found",
        409: "conflicts with the current state",
        413: "too large",
        415: "unsupported media type",
        429: "too many requests; see Retry-After",
        503: "the gateway is starting, or a service it needs is down; retry later",
    }
    return {str(c): {"description": text[c], "content": {JSON: {"schema": ERROR}}} for c in codes}


def _ok(status: int = 200, content_type: str = JSON, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {str(status): {"description": "OK", "content": {content_type: {"schema": schema or {"type": "object"}}}}}


def _json_body(schema: dict[str, Any], max_bytes: int) -> dict[str, Any]:
    return {"required": True, "description": f"at most {max_bytes} bytes", "content": {JSON: {"schema": schema}}}


def _model(model: type[BaseModel], schemas: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in schema.pop("$defs", {}).items():
        schemas[name] = definition
    schemas[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _path(*names: str) -> list[dict[str, Any]]:
    return [{"name": n, "in": "path", "required": True, "schema": {"type": "string", "maxLength": 128}} for n in names]


def _query(name: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema}


REST_MESSAGE = {
    "type": "object",
    "required": ["sender", "message"],
    "properties": {
        "sender": {"type": ["string", "integer"], "minLength": 1, "maxLength": MAX_SENDER_CHARS},
        "message": {"type": "string", "minLength": 1, "maxLength": MAX_TEXT_CHARS},
        "message_id": {"type": ["string", "integer"], "minLength": 1, "maxLength": MAX_MESSAGE_ID_CHARS},
        "metadata": {
            "type": "object",
            "properties": {
                "customer_token": {"type": "string", "description": "the shop's signed customer token (HS256 JWT)"},
                "session_token": {"type": "string", "description": "the sender's session token (or the header)"},
                "phone": {"type": "string", "description": "a hint only; links nothing without a customer token"},
                "email": {"type": "string", "description": "a hint only"},
                "name": {"type": "string"},
            },
        },
    },
}
REST_REPLIES = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["recipient_id", "text"],
        "properties": {
            "recipient_id": {"type": "string"},
            "text": {"type": "string"},
            "buttons": {"type": "array", "items": {"type": "object"}},
        },
    },
}
TELEGRAM_UPDATE = {
    "type": "object",
    "required": ["update_id"],
    "description": "a Bot API Update (message or callback_query)",
    "properties": {
        "update_id": {"type": "integer"},
        "message": {"type": "object"},
        "callback_query": {"type": "object"},
    },
}
TWILIO_SMS = {
    "type": "object",
    "required": ["MessageSid", "From"],
    "properties": {
        "MessageSid": {"type": "string", "maxLength": 64},
        "AccountSid": {"type": "string", "maxLength": 64},
        "From": {"type": "string", "maxLength": 32},
        "To": {"type": "string", "maxLength": 32},
        "Body": {"type": "string", "maxLength": MAX_TEXT_CHARS},
        "NumMedia": {"type": "string", "pattern": "^[0-9]{1,2}$"},
    },
}
TWILIO_CALL = {
    "type": "object",
    "required": ["CallSid", "From"],
    "properties": {
        "CallSid": {"type": "string", "maxLength": 64},
        "AccountSid": {"type": "string", "maxLength": 64},
        "From": {"type": "string", "maxLength": 32},
        "To": {"type": "string", "maxLength": 32},
        "CallStatus": {"type": "string", "maxLength": 32},
    },
}
APP_USER = [
    _query("user", {"type": "string", "minLength": 1, "maxLength": MAX_USER_CHARS}, True),
    _query("expires", {"type": "string", "pattern": "^[0-9]{1,12}$"}, True),
    _query("token", {"type": "string", "maxLength": 128}, True),
]
TEXT_BODY = {"type": "object", "required": ["text"], "properties": {"text": {"type": "string", "minLength": 1}}}


DOWNSTREAM_ANSWER = {
    "type": "object",
    "required": ["ok", "event", "duplicate"],
    "properties": {"ok": {"type": "boolean"}, "event": {"type": "string"}, "duplicate": {"type": "boolean"},
                   "result": {"type": "string"}},
}  # fmt: skip
COURIER_PUSH = {
    "type": "object",
    "required": ["param"],
    "properties": {"param": {"type": "string", "description": "the push as JSON (lastResult, data …)"}},
}


def _downstream_callbacks() -> dict[tuple[str, str], dict[str, Any]]:
    """The payment centre's, warehouse's and courier's signed callbacks (``gateway/downstream_api.py``)."""
    callbacks = (
        ("/downstream/payment/refunds", "A refund result from the payment centre", JSON),
        ("/downstream/warehouse/events", "An intercept, expedite, dispatch, receipt or quality-check result", JSON),
        ("/downstream/courier/tracking", "A tracking push: every scan so far of a subscribed parcel", FORM),
        ("/downstream/courier/pickups", "A pick-up state: assigned, collected or failed", FORM),
        ("/downstream/courier/work-orders", "The courier's answer to an urge or an inquiry", FORM),
    )
    ops: dict[tuple[str, str], dict[str, Any]] = {}
    for path, summary, content_type in callbacks:
        schema: dict[str, Any] = COURIER_PUSH if content_type == FORM else {"type": "object"}
        ops[("POST", path)] = {
            "summary": summary,
            "tags": ["downstream"],
            "requestBody": {"required": True, "content": {content_type: {"schema": schema}}},
            "responses": {**_ok(schema=DOWNSTREAM_ANSWER), **_errors(400, 401, 404, 413, 503)},
            "security": [{"downstreamSignature": []}],
        }
    return ops


def _operations(settings: Settings, schemas: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    staff: list[dict[str, list[str]]] = [{"bearer": []}]
    twiml = {"200": {"description": "TwiML", "content": {"text/xml": {"schema": {"type": "string"}}}}}
    rest_security: list[dict[str, list[str]]] = [{"restToken": []}] if settings.channel("rest").webhook_token else []
    ops: dict[tuple[str, str], dict[str, Any]] = {
        ("GET", "/health"): {
            "summary": "Readiness: the store and the NLU server answer",
            "tags": ["gateway"],
            "responses": {**_ok(), "503": {"description": "starting or degraded", "content": {JSON: {"schema": {}}}}},
        },
        ("GET", "/webhooks/rest/"): {"summary": "The REST channel is up", "tags": ["channels"], "responses": _ok()},
        ("POST", "/webhooks/rest/webhook"): {
            "summary": "A customer's message from the shop backend (Rasa's REST contract); the turn's replies",
            "tags": ["channels"],
            "parameters": [
                {"name": "Idempotency-Key", "in": "header", "schema": {"type": "string", "maxLength": 200}},
                {
                    "name": "X-Session-Token",
                    "in": "header",
                    "description": "the sender's session token from its first answer; required after it",
                    "schema": {"type": "string"},
                },
                {"name": "X-Customer-Token", "in": "header", "schema": {"type": "string"}},
            ],
            "requestBody": _json_body(REST_MESSAGE, 1024 * 1024),
            "responses": {**_ok(schema=REST_REPLIES), **_errors(400, 401, 403, 413, 429, 503)},
            "security": rest_security,
        },
        **_downstream_callbacks(),
        ("POST", "/webhooks/telegram/webhook"): {
            "summary": "A Telegram update (Bot API webhook)",
            "tags": ["channels"],
            "requestBody": _json_body(TELEGRAM_UPDATE, 1024 * 1024),
            "responses": {**_ok(), **_errors(400, 403, 413, 503)},
            "security": [{"telegramSecret": []}],
        },
        ("POST", "/webhooks/twilio/sms"): {
            "summary": "An inbound SMS/MMS (Twilio messaging webhook)",
            "tags": ["channels"],
            "requestBody": {"required": True, "content": {FORM: {"schema": TWILIO_SMS}}},
            "responses": {**twiml, **_errors(400, 403, 413, 429, 503)},
            "security": [{"twilioSignature": []}],
        },
        ("GET", "/webhooks/app/ws"): {
            "summary": "The app's chat websocket (JSON frames; see channels/app_im.py)",
            "tags": ["channels"],
            "parameters": APP_USER,
            "responses": {"101": {"description": "switching to the websocket"}, **_errors(400, 401, 429)},
            "security": [{"appUserToken": []}],
        },
        ("POST", "/webhooks/app/upload"): {
            "summary": "Upload an attachment (the raw bytes with their Content-Type), then reference it",
            "tags": ["channels"],
            "parameters": [*APP_USER, _query("filename", {"type": "string", "maxLength": 200})],
            "requestBody": {
                "required": True,
                "description": f"at most MEDIA_MAX_BYTES ({settings.media.max_bytes}) bytes",
                "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
            },
            "responses": {**_ok(), **_errors(400, 401, 413, 415, 429, 503)},
            "security": [{"appUserToken": []}],
        },
        ("GET", "/chat"): {
            "summary": "The web chat page (signs in with the app's user token)",
            "tags": ["channels"],
            "responses": _ok(content_type="text/html", schema={"type": "string"}),
        },
    }
    for path, what in (
        ("/webhooks/twilio/voice", "A call comes in"),
        ("/webhooks/twilio/voice/next", "What the call does after a media stream ended"),
        ("/webhooks/twilio/voice/status", "Call status callback"),
    ):
        ops[("POST", path)] = {
            "summary": f"{what} (Twilio voice webhook)",
            "tags": ["phone"],
            "requestBody": {"required": True, "content": {FORM: {"schema": TWILIO_CALL}}},
            "responses": {
                **twiml,
                "204": {"description": "noted"},
                **_errors(400, 403, 413, 503),
            },
            "security": [{"twilioSignature": []}],
        }

    # The agent API: staff (handle_conversations) or the AGENT_API_TOKEN service token.
    agent_errors = _errors(400, 401, 403, 404, 409, 413, 503)
    conv = "/api/agent/conversations/{conversation_id}"
    agent_body = {
        "type": "object",
        "properties": {"agent": {"type": "string", "maxLength": 64, "description": "with the service token"}},
    }
    agent: list[tuple[str, str, str, tuple[str, ...], dict[str, Any] | None, int]] = [
        ("GET", "/api/agent/queue", "Waiting conversations and the agent's own", (), None, 200),
        ("GET", "/api/agent/agents", "Colleagues and skill groups to transfer to", (), None, 200),
        ("GET", conv, "A conversation and its messages", ("conversation_id",), None, 200),
        ("GET", f"{conv}/workspace", "Everything the conversation view shows", ("conversation_id",), None, 200),
        ("POST", f"{conv}/claim", "Take a waiting conversation", ("conversation_id",), agent_body, 200),
        (
            "POST", f"{conv}/messages", "Answer the customer on their channel", ("conversation_id",),
            {"type": "object", "required": ["text"], "properties": {
                "text": {"type": "string", "minLength": 1, "maxLength": MAX_TEXT_CHARS},
                "client_message_id": {"type": "string", "minLength": 1, "maxLength": 128},
                "agent": {"type": "string", "maxLength": 64}}},
            201,
        ),
        (
            "POST", f"{conv}/notes", "An internal note", ("conversation_id",),
            {"type": "object", "required": ["text"], "properties": {
                "text": {"type": "string", "minLength": 1, "maxLength": 4000}, "agent": {"type": "string"}}},
            201,
        ),
        (
            "POST", f"{conv}/transfer", "To a colleague or a skill group", ("conversation_id",),
            {"type": "object", "properties": {
                "to_agent": {"type": "string", "maxLength": 64}, "queue": {"type": "string", "maxLength": 64},
                "reason": {"type": "string", "maxLength": 500}, "agent": {"type": "string"}}},
            200,
        ),
        (
            "POST", f"{conv}/close", "Hand back to the bot (optionally with a survey)", ("conversation_id",),
            {"type": "object", "properties": {
                "resolution": {"type": "string", "maxLength": 2000}, "survey": {"type": "boolean"},
                "agent": {"type": "string"}}},
            200,
        ),
        ("GET", "/api/agent/customers/{customer_id}", "A customer on every channel", ("customer_id",), None, 200),
        (
            "GET", "/api/agent/customers/{customer_id}/requests", "A customer's after-sales requests",
            ("customer_id",), None, 200,
        ),
        (
            "POST", "/api/agent/customers/merge", "Fold one customer into another (audited)", (),
            {"type": "object", "required": ["source_id", "target_id", "reason"], "properties": {
                "source_id": ID, "target_id": ID, "reason": {"type": "string", "minLength": 1, "maxLength": 500},
                "agent": {"type": "string"}}},
            200,
        ),
    ]  # fmt: skip
    for method, path, summary, names, body, success in agent:
        op: dict[str, Any] = {
            "summary": summary,
            "tags": ["agent"],
            "parameters": _path(*names),
            "responses": {**_ok(success), **agent_errors},
            "security": staff,
        }
        if body is not None:
            op["requestBody"] = _json_body(body, AGENT_MAX_BODY)
        ops[(method, path)] = op
    ops[("GET", "/api/agent/media/{media_id}")] = {
        "summary": "A customer's photo or file",
        "tags": ["agent"],
        "parameters": _path("media_id"),
        "responses": {"200": {"description": "the bytes", "content": {"*/*": {}}}, **agent_errors},
        "security": staff,
    }

    # Photo OCR: staff who work on tickets or conversations.
    ocr_errors = _errors(400, 401, 403, 404, 409, 413, 415, 503)
    ops[("POST", "/api/ocr")] = {
        "summary": "Read a photo: an upload (multipart 'image'), a raw image/* body, or a stored one by reference",
        "tags": ["ocr"],
        "parameters": [
            _query("name", {"type": "string", "maxLength": 200}),
            _query("engine", {"enum": list(ENGINE_NAMES)}),
        ],
        "requestBody": {
            "required": True,
            "description": f"images at most {MAX_IMAGE_BYTES} bytes, JSON at most {OCR_MAX_JSON}",
            "content": {
                JSON: {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "media_id": {"type": "string", "maxLength": 128},
                            "message_id": {"type": "string", "maxLength": 64},
                            "attachment": {"type": "integer", "minimum": 0},
                            "engine": {"enum": list(ENGINE_NAMES)},
                        },
                    }
                },
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["image"],
                        "properties": {"image": {"type": "string", "format": "binary"}, "engine": {"type": "string"}},
                    }
                },
                "image/png": {"schema": {"type": "string", "format": "binary"}},
                "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
            },
        },
        "responses": {**_ok(201), **ocr_errors},
        "security": staff,
    }
    ops[("GET", "/api/ocr/{result_id}")] = {
        "summary": "A stored OCR result (personal data masked)",
        "tags": ["ocr"],
        "parameters": _path("result_id"),
        "responses": {**_ok(), **ocr_errors},
        "security": staff,
    }
    ops[("GET", "/api/ocr/{result_id}/image")] = {
        "summary": "The photo with doubtful fields outlined and personal data blurred",
        "tags": ["ocr"],
        "parameters": _path("result_id"),
        "responses": {**_ok(content_type="image/png", schema={"type": "string"}), **ocr_errors},
        "security": staff,
    }
    ops[("POST", "/api/ocr/{result_id}/corrections")] = {
        "summary": "A human's correction of one field, with why (who is the signed-in staff member)",
        "tags": ["ocr"],
        "parameters": _path("result_id"),
        "requestBody": _json_body(
            {
                "type": "object",
                "required": ["field", "value", "why"],
                "properties": {
                    "field": {"type": "string", "minLength": 1, "maxLength": 64},
                    "value": {"type": ["string", "integer", "null"]},
                    "who": {"type": "string", "maxLength": 128, "description": "ignored: kept for old clients"},
                    "why": {"type": "string", "minLength": 1, "maxLength": 1000},
                },
            },
            OCR_MAX_JSON,
        ),
        "responses": {**_ok(), **ocr_errors},
        "security": staff,
    }

    # Route planning: dispatchers and admins.
    routes_errors = _errors(400, 401, 403, 404, 409, 503)
    plan = "/api/routes/plans/{plan_id}"
    date_query = _query("date", {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"})
    routes: list[tuple[str, str, str, tuple[str, ...], type[BaseModel] | None, int, str]] = [
        ("GET", "/api/routes/plans/latest", "The latest plan (of a day)", (), None, 200, JSON),
        ("GET", f"{plan}.png", "The plan's map", ("plan_id",), None, 200, "image/png"),
        ("GET", plan, "A plan", ("plan_id",), None, 200, JSON),
        ("POST", "/api/routes/plan", "Plan a day's pick-ups", (), PlanRequest, 201, JSON),
        ("POST", f"{plan}/replan", "Replan during the day", ("plan_id",), ReplanRequest, 201, JSON),
        ("POST", f"{plan}/actuals", "A vehicle's actual distance and energy", ("plan_id",), ActualRequest, 201, JSON),
        ("GET", "/api/routes/carbon", "Planned against actual CO2 of a day", (), None, 200, JSON),
        ("POST", "/api/routes/pickups", "A pick-up request (idempotent by pickup_id)", (), PickupRequest, 201, JSON),
    ]
    for method, path, summary, names, model, success, content_type in routes:
        op = {
            "summary": summary,
            "tags": ["routes"],
            "parameters": _path(*names) + ([date_query] if path.endswith(("latest", "carbon")) else []),
            "responses": {**_ok(success, content_type, {"type": "string"} if content_type != JSON else None)},
            "security": staff,
        }
        op["responses"].update(routes_errors)
        if path.endswith("pickups"):
            op["responses"].update(_ok(200))  # the same pickup_id again
        if model is not None:
            op["requestBody"] = _json_body(_model(model, schemas), 1024 * 1024)
        ops[(method, path)] = op
    return ops


def served(app: web.Application) -> set[tuple[str, str]]:
    """(method, path template) of every route the app serves."""
    found = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("formatter") or info.get("path")
        if isinstance(path, str):
            found.add((route.method, path))
    return found


def complete(document: dict[str, Any], app: web.Application, settings: Settings) -> dict[str, Any]:
    """The registry's document with the operations above that ``app`` serves."""
    schemas: dict[str, Any] = document["components"]["schemas"]
    serving = served(app)
    for (method, path), operation in _operations(settings, schemas).items():
        if (method, path) in serving:
            names = path.strip("/").replace("{", "").replace("}", "").replace("/", "_").replace(".", "_")
            operation.setdefault("operationId", f"{method.lower()}_{names or 'root'}")
            document["paths"].setdefault(path, {})[method.lower()] = operation
    document["components"]["securitySchemes"].update(SECURITY_SCHEMES)
    return document
