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
CALLBACKS: tuple[tuple[str, str, Parser], ...] = (
    (PAYMENT_CALLBACK, "payment", parse_payment_callback),
    (WAREHOUSE_CALLBACK, "warehouse", parse_warehouse_callback),
    (f"{COURIER_CALLBACKS}/tracking", "courier", parse_tracking_push),
    (f"{COURIER_CALLBACKS}/pickups", "courier", parse_pickup_push),
    (f"{COURIER_CALLBACKS}/work-orders", "courier", parse_work_order_push),
)


class DownstreamApi:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def routes(self) -> list[web.RouteDef]:
        return [web.post(path, self._handler(system, parse)) for path, system, parse in CALLBACKS]

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
