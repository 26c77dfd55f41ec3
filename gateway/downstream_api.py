"""The downstream systems' callbacks (``/downstream/…``): signed, stored, then applied.

Every callback is checked in this order, and refused with nothing stored or changed: a body over
:data:`MAX_CALLBACK_BYTES` (413 ``too_large``), a missing or wrong signature (401
``invalid_signature``), a timestamp outside the window (401 ``stale_timestamp``), a body that is
not the system's protocol (400 ``malformed_body``), news about a request, pick-up, parcel or task
this gateway does not know (404 ``unknown_request``). A good one is stored in the inbox before it
is acknowledged (200 ``{"ok": true, "duplicate": …}``); a repeat is acknowledged and changes
nothing. Errors are the project's JSON ``{"error": {"code", "message", "details"}}``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from channels.base import json_response
from channels.operations import FORM, JSON, Body, Operation, Reply, SecurityScheme, route
from downstream.courier import parse_pickup_push, parse_tracking_push, parse_work_order_push
from downstream.events import DownstreamEvent, MalformedCallback, UnknownSubject
from downstream.payment import parse_payment_callback
from downstream.signing import InvalidSignature, StaleTimestamp, verify
from downstream.warehouse import parse_warehouse_callback
from errors import TooLarge
from gateway.downstream import COURIER_CALLBACKS, PAYMENT_CALLBACK, WAREHOUSE_CALLBACK
from gateway.runtime import Gateway
from gateway.starting import wired

log = logging.getLogger(__name__)

MAX_CALLBACK_BYTES = 256 * 1024
Parser = Callable[[bytes], DownstreamEvent]
SIGNATURE = SecurityScheme(
    "downstreamSignature",
    {
        "type": "apiKey",
        "in": "header",
        "name": "X-Signature",
        "description": 'sha256=hex HMAC-SHA256 of "<X-Signature-Timestamp>.<raw body>" with the system\'s shared '
        "secret (PAYMENT_CENTRE_SECRET, WAREHOUSE_SECRET, COURIER_SECRET); the timestamp must be within "
        "DOWNSTREAM_CALLBACK_WINDOW_SECONDS (docs/downstream.md)",
    },
)
ANSWER = {
    "type": "object",
    "required": ["ok", "event", "duplicate"],
    "properties": {"ok": {"type": "boolean"}, "event": {"type": "string"}, "duplicate": {"type": "boolean"},
                   "result": {"type": "string"}},
}  # fmt: skip
JSON_CALLBACK = Body({JSON: {"type": "object"}})
COURIER_PUSH = Body(
    {FORM: {
        "type": "object",
        "required": ["param"],
        "properties": {"param": {"type": "string", "description": "the push as JSON (lastResult, data …)"}},
    }}
)  # fmt: skip
CALLBACKS: tuple[tuple[str, str, Parser, str, Body], ...] = (
    (PAYMENT_CALLBACK, "payment", parse_payment_callback, "A refund result from the payment centre", JSON_CALLBACK),
    (WAREHOUSE_CALLBACK, "warehouse", parse_warehouse_callback,
     "An intercept, expedite, dispatch, receipt or quality-check result", JSON_CALLBACK),
    (f"{COURIER_CALLBACKS}/tracking", "courier", parse_tracking_push,
     "A tracking push: every scan so far of a subscribed parcel", COURIER_PUSH),
    (f"{COURIER_CALLBACKS}/pickups", "courier", parse_pickup_push, "A pick-up state: assigned, collected or failed",
     COURIER_PUSH),
    (f"{COURIER_CALLBACKS}/work-orders", "courier", parse_work_order_push,
     "The courier's answer to an urge or an inquiry", COURIER_PUSH),
)  # fmt: skip
"""(path, system, parser, summary, body) of each callback."""
PUBLISHED_IDS = {f"{COURIER_CALLBACKS}/work-orders": "post_downstream_courier_work-orders"}
"""Operation ids first published with the path's dash kept (clients may have generated code from them)."""
REFUSALS = {
    400: ("malformed_body",),
    401: ("invalid_signature", "stale_timestamp"),
    404: ("unknown_request",),
    413: ("too_large",),
}


class DownstreamApi:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def routes(self) -> list[web.RouteDef]:
        return [
            route(
                Operation("POST", path, summary, "downstream", body=body, replies=(Reply(schema=ANSWER),),
                          errors=(400, 401, 404, 413, 503), codes=REFUSALS, security=(SIGNATURE,),
                          operation_id=PUBLISHED_IDS.get(path)),
                self._handler(system, parse),
            )
            for path, system, parse, summary, body in CALLBACKS
        ]  # fmt: skip

    def _handler(self, system: str, parse: Parser) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def serve(request: web.Request) -> web.Response:
            gateway = self.gateway
            fulfilment, secrets = wired(gateway.fulfilment), wired(gateway.downstream_secrets)
            try:
                if request.content_length is not None and request.content_length > MAX_CALLBACK_BYTES:
                    raise TooLarge(f"at most {MAX_CALLBACK_BYTES} bytes", limit=MAX_CALLBACK_BYTES)
                body = await request.read()  # JSON and form bodies are read (in time) by the app's middleware
                if len(body) > MAX_CALLBACK_BYTES:
                    raise TooLarge(f"at most {MAX_CALLBACK_BYTES} bytes", limit=MAX_CALLBACK_BYTES)
                secret = getattr(secrets, system)
                window = gateway.settings.downstream.window_seconds
                signed_at = verify(secret, body, request.headers, window_seconds=window)
                event = parse(body)
                if not await fulfilment.known(event):
                    raise UnknownSubject(f"no {event.subject()} here")
            except (InvalidSignature, StaleTimestamp, MalformedCallback, UnknownSubject, TooLarge) as exc:
                log.info("downstream %s callback refused: %s (%s)", system, exc.code, exc.message)
                raise
            duplicate, note = await fulfilment.handle(event, body, signed_at)
            return json_response({"ok": True, "event": event.id, "duplicate": duplicate, "result": note})

        return serve
