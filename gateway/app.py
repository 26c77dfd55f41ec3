"""The aiohttp application: channel routes plus ``GET /health``."""

from __future__ import annotations

import asyncio
import ipaddress
import logging

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler, Middleware
from pymongo.errors import PyMongoError

from channels.base import SenderThrottled, json_response
from gateway.agent_api import AgentApi
from gateway.backoffice_api import BackofficeApi
from gateway.console_web import ConsoleWeb
from gateway.downstream_api import DownstreamApi
from gateway.limits import (
    CLIENT_ADDRESS,
    ClientAddress,
    IpRateLimit,
    Rate,
    TokenBucketLimiter,
    client_address,
    parse_networks,
    too_many,
)
from gateway.ocr_routes import ocr_routes
from gateway.quality_api import QualityApi
from gateway.routes_api import RoutesApi
from gateway.runtime import Gateway
from gateway.staff_auth import StaffAuth
from gateway.starting import RETRY_AFTER_SECONDS, GatewayStarting, wired

log = logging.getLogger(__name__)

GATEWAY_KEY = web.AppKey("gateway", Gateway)
MAX_REQUEST_BYTES = 1024 * 1024
IP_LIMITED_PATHS = ("/webhooks/rest/", "/webhooks/app/", "/chat")
"""Webhooks customers' devices or the shop call; the providers' (Telegram, Twilio) are limited per sender."""
UP_WHILE_STARTING = frozenset({"/health"})
"""Paths served during start-up: the health check says ``starting`` itself, and the cluster's health
watcher and load balancers must be able to ask."""


def ip_rate_limit(gateway: Gateway, addresses: ClientAddress) -> IpRateLimit:
    settings = gateway.settings
    limiter = TokenBucketLimiter(
        Rate(settings.limits.ip_per_minute, settings.limits.ip_burst), max_keys=settings.limits.max_keys
    )
    return IpRateLimit(limiter, addresses, IP_LIMITED_PATHS, parse_networks(settings.limits.ip_exempt))


def build_app(gateway: Gateway, *, wait_for_nlu: bool = True) -> web.Application:
    """The web app; starting it starts the gateway, cleaning it up stops the gateway."""
    addresses = ClientAddress(parse_networks(gateway.settings.limits.trusted_proxies))
    app = web.Application(
        client_max_size=MAX_REQUEST_BYTES,
        middlewares=[ip_rate_limit(gateway, addresses).middleware, while_starting(gateway), json_errors, body_deadline],
    )
    app[GATEWAY_KEY] = gateway
    app[CLIENT_ADDRESS] = addresses

    async def start(_: web.Application) -> None:
        await gateway.start(wait_for_nlu=wait_for_nlu)

    async def stop(_: web.Application) -> None:
        await gateway.stop()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    auth = StaffAuth(gateway)  # bearer tokens and console sessions, for every staff route
    app.router.add_routes(ocr_routes(gateway, auth))

    for channel in gateway.channels:
        app.router.add_routes(channel.routes(gateway.handler_for(channel)))

    app.router.add_routes(DownstreamApi(gateway).routes())  # signed callbacks of the payment centre, warehouse, courier
    app.router.add_routes(AgentApi(gateway, auth).routes())
    backoffice_api = BackofficeApi(gateway, auth)
    app.router.add_routes(backoffice_api.routes())
    app.router.add_routes(QualityApi(gateway, auth, backoffice_api.spec).routes())  # one OpenAPI document
    app.router.add_routes(ConsoleWeb(gateway, auth).routes())
    routes_api = RoutesApi(gateway, auth)  # return pick-up route planning
    app.router.add_routes(routes_api.routes())
    app.on_cleanup.append(routes_api.close)
    return app


def while_starting(gateway: Gateway) -> Middleware:
    """Answer 503 ``starting`` (with ``Retry-After``) to every request but :data:`UP_WHILE_STARTING`
    until start-up has wired the gateway's parts, so that no handler needs a check of its own."""

    @web.middleware
    async def hold_until_started(request: web.Request, handler: Handler) -> web.StreamResponse:
        if gateway.serving or request.path in UP_WHILE_STARTING:
            return await handler(request)
        return starting_response(GatewayStarting())

    return hold_until_started


def starting_response(error: GatewayStarting) -> web.Response:
    response = json_response(error.body(), error.status)
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


BODY_SECONDS = 10.0
"""How long a JSON or form body may take to arrive: a client trickling bytes holds a handler."""


@web.middleware
async def body_deadline(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Read small bodies (JSON, forms) within :data:`BODY_SECONDS`, before the handler sees them
    (aiohttp keeps what was read); uploads and websockets are limited by their own routes."""
    if request.can_read_body and request.content_type in ("application/json", "application/x-www-form-urlencoded"):
        try:
            await asyncio.wait_for(request.read(), BODY_SECONDS)
        except TimeoutError:
            log.info("body of %s %s did not arrive in %.0f s", request.method, request.path, BODY_SECONDS)
            return json_response({"error": "body_timeout", "detail": "the request body took too long to arrive"}, 408)
    return await handler(request)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Failures become JSON a client can act on; a store outage says "retry later"."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except GatewayStarting as exc:  # a part used before start-up wired it: as the middleware answers
        return starting_response(exc)
    except SenderThrottled as exc:
        return too_many("this sender sent too many messages; slow down", exc.retry_after)
    except HttpProcessingError as exc:  # a body aiohttp cannot parse (e.g. a broken multipart part header)
        log.info("malformed request body during %s %s: %s", request.method, request.path, exc.message)
        return json_response({"error": "malformed_body", "detail": f"the body cannot be parsed: {exc.message}"}, 400)
    except PyMongoError as exc:
        log.error("store unavailable during %s %s: %s", request.method, request.path, exc)
        response = json_response(
            {"error": "store_unavailable", "detail": "the conversation store is unavailable; retry later"}, 503
        )
        response.headers["Retry-After"] = "5"
        return response
    except Exception:
        log.exception("unhandled error during %s %s", request.method, request.path)
        return json_response({"error": "internal_error", "detail": "the gateway failed; retry later"}, 500)


async def metrics(request: web.Request) -> web.Response:
    """The turns' stage durations and store round trips (Prometheus text), for the operators'
    scraper on the networks of ``METRICS_FROM`` only."""
    gateway = request.app[GATEWAY_KEY]
    allowed = parse_networks(gateway.settings.gateway.metrics_from)
    address = _ip(client_address(request))
    if address is None or not any(address in network for network in allowed):
        return json_response({"error": "forbidden", "detail": "metrics are served to the operators' network only"}, 403)
    timings = wired(gateway.turns).timings
    return web.Response(text=timings.prometheus(), content_type="text/plain", charset="utf-8")


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value.strip("[]"))
    except ValueError:
        return None


async def health(request: web.Request) -> web.Response:
    """200 once the store and the NLU server answer; 503 with what is missing otherwise: ``starting``
    during start-up, ``degraded`` after it (an outage: the dialogue falls back, messages are kept)."""
    gateway = request.app[GATEWAY_KEY]
    checks = await gateway.ready()
    status = "ok" if all(checks.values()) else "degraded" if gateway.started else "starting"
    body: dict[str, object] = {"status": status, **checks}
    if gateway.nlu_error:
        body["status"] = "degraded"
        body["nlu_error"] = gateway.nlu_error
    return json_response(body, status=200 if all(checks.values()) else 503)
