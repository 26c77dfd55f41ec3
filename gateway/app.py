"""The aiohttp application: channel routes plus ``GET /health``, and the one middleware that
answers every error (:func:`json_errors`)."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging

from aiohttp import hdrs, web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler, Middleware
from pymongo.errors import ConnectionFailure, PyMongoError

import textpatterns
from channels.base import error_response, json_response
from channels.operations import JSON, Operation, Reply, route
from errors import (
    Conflict,
    Forbidden,
    GatewayError,
    MethodNotAllowed,
    NotFound,
    RequestTimeout,
    TooLarge,
    TooManyRequests,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
    UserError,
)
from gateway import openapi
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
)
from gateway.ocr_routes import ocr_routes
from gateway.quality_api import QualityApi
from gateway.routes_api import RoutesApi
from gateway.runtime import Gateway
from gateway.staff_auth import StaffAuth
from gateway.starting import GatewayStarting, wired

log = logging.getLogger(__name__)

GATEWAY_KEY = web.AppKey("gateway", Gateway)
MAX_REQUEST_BYTES = 1024 * 1024
IP_LIMITED_PATHS = ("/webhooks/rest/", "/webhooks/app/", "/chat")
"""Webhooks customers' devices or the shop call; the providers' (Telegram, Twilio) are limited per sender."""
UP_WHILE_STARTING = frozenset({"/health"})
"""Paths served during start-up: the health check says ``starting`` itself, and the cluster's health
watcher and load balancers must be able to ask."""
BROWSER_PAGES = ("/console", "/chat")
"""Pages for people in a browser (the console's pages and their assets, the customers' chat page):
aiohttp's own answers there (404, 405, a redirect) stay as aiohttp makes them. Every other path is
an API, where those are JSON too; errors of the project's tree are JSON everywhere."""


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
        # json_errors first: it answers whatever the others and the handlers raise.
        middlewares=[json_errors, ip_rate_limit(gateway, addresses).middleware, while_starting(gateway), body_deadline],
    )
    app[GATEWAY_KEY] = gateway
    app[CLIENT_ADDRESS] = addresses

    async def start(_: web.Application) -> None:
        await gateway.start(wait_for_nlu=wait_for_nlu)

    async def stop(_: web.Application) -> None:
        await gateway.stop()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    app.router.add_routes([route(HEALTH, health), route(METRICS, metrics), *openapi.routes()])
    auth = StaffAuth(gateway)  # bearer tokens and console sessions, for every staff route
    app.router.add_routes(ocr_routes(gateway, auth))

    for channel in gateway.channels:
        app.router.add_routes(channel.routes(gateway.handler_for(channel)))

    app.router.add_routes(DownstreamApi(gateway).routes())  # signed callbacks of the payment centre, warehouse, courier
    app.router.add_routes(AgentApi(gateway, auth).routes())
    backoffice_api = BackofficeApi(gateway, auth)
    app.router.add_routes(backoffice_api.routes())
    app.router.add_routes(QualityApi(gateway, auth).routes())
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
        raise GatewayStarting()

    return hold_until_started


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
            raise RequestTimeout("the request body took too long to arrive", code="body_timeout") from None
    return await handler(request)


INTERNAL_MESSAGE = "the gateway failed; retry later"
STORE_RETRY_SECONDS = 5.0
_HTTP_ERRORS: dict[int, type[UserError]] = {
    400: UserError,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    408: RequestTimeout,
    409: Conflict,
    413: TooLarge,
    415: UnsupportedMediaType,
    429: TooManyRequests,
}
"""aiohttp's own client errors (an unknown path, a method the path does not take, a body over the
app's limit …) as the project's errors."""
_NON_WORD = textpatterns.compile(r"\W+")


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The one place errors become answers, all ``{"error": {"code", "message", "details"}}``:

    - an error of the project's tree (:class:`errors.GatewayError`) with its status, code and
      details (a 5xx other than :class:`~errors.Unavailable` says no more than ``internal_error``
      would, under its own code, and is logged with its traceback);
    - aiohttp's own 4xx (``not_found``, ``method_not_allowed``, ``too_large`` …) on API paths;
    - a body that cannot be parsed: 400 ``malformed_body``;
    - the store unreachable: 503 ``store_unavailable`` with ``Retry-After``;
    - anything else: 500 ``internal_error``, logged with its traceback, nothing of it in the body.
    """
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or not is_api_path(request.path):
            raise  # redirects, and the browser pages' own answers
        return _http_error(request, exc)
    except GatewayError as exc:
        return _answer(request, exc)
    except (HttpProcessingError, json.JSONDecodeError) as exc:  # e.g. a broken multipart header, bad JSON
        reason = exc.message if isinstance(exc, HttpProcessingError) else exc.msg
        log.info("malformed request body during %s %s: %s", request.method, request.path, reason)
        return error_response(UserError(f"the body cannot be parsed: {reason}", code="malformed_body"))
    except PyMongoError as exc:
        if isinstance(exc, ConnectionFailure):  # the store is down or unreachable (AutoReconnect, timeouts …)
            log.error("store unavailable during %s %s: %s", request.method, request.path, exc)
        else:  # e.g. interrupted at shutdown; a duplicate key here would be a bug, hence the traceback
            log.exception("store error during %s %s", request.method, request.path)
        unavailable = Unavailable(
            "the conversation store is unavailable; retry later",
            code="store_unavailable",
            retry_after=STORE_RETRY_SECONDS,
        )
        return error_response(unavailable)
    except Exception:
        log.exception("unhandled error during %s %s", request.method, request.path)
        return error_response(GatewayError(INTERNAL_MESSAGE))


def is_api_path(path: str) -> bool:
    """Whether aiohttp's own errors on ``path`` are answered in JSON (everything but :data:`BROWSER_PAGES`)."""
    page = any(path == prefix or path.startswith(prefix + "/") for prefix in BROWSER_PAGES)
    return not page or path == "/console/ws"


def _answer(request: web.Request, error: GatewayError) -> web.Response:
    if error.status < 500:
        log.debug("%s %s refused: %s %s (%s)", request.method, request.path, error.status, error.code, error.message)
        return error_response(error)
    if isinstance(error, Unavailable):
        log.warning("%s %s: %s (%s)", request.method, request.path, error.code, error.message)
        return error_response(error)
    log.error("%s %s failed: %s", request.method, request.path, error.code, exc_info=error)
    return error_response(GatewayError(INTERNAL_MESSAGE, code=error.code))


def _http_error(request: web.Request, exc: web.HTTPException) -> web.Response:
    """aiohttp's 4xx/5xx as JSON, keeping its status and headers (``Allow`` of a 405 …)."""
    default_text = f"{exc.status}: {exc.reason}"
    message = exc.text if exc.text and exc.text != default_text else exc.reason.lower()
    error_class = _HTTP_ERRORS.get(exc.status)
    if exc.status == 404:
        error: GatewayError = NotFound(f"nothing at {request.path}")
    elif exc.status == 405 and isinstance(exc, web.HTTPMethodNotAllowed):
        error = MethodNotAllowed(f"{request.method} is not allowed here", allowed=sorted(exc.allowed_methods))
    elif error_class is not None:
        error = error_class(message)
    elif exc.status < 500:
        error = UserError(message, code=_NON_WORD.sub("_", exc.reason.lower()).strip("_") or "invalid_request")
    else:
        log.error("%s %s: %s", request.method, request.path, default_text)
        error = GatewayError(INTERNAL_MESSAGE)
    response = error_response(error)
    response.set_status(exc.status)  # the status aiohttp chose (error_class covers the usual ones)
    for name, value in exc.headers.items():
        if name not in (hdrs.CONTENT_TYPE, hdrs.CONTENT_LENGTH):
            response.headers[name] = value
    return response


HEALTH = Operation(
    "GET", "/health", "Readiness: the store and the NLU server answer", "gateway",
    replies=(Reply(), Reply(503, JSON, {}, "starting or degraded")),
)  # fmt: skip
METRICS = Operation("GET", "/metrics", "Prometheus text, for the operators' networks", "gateway", published=False)


async def metrics(request: web.Request) -> web.Response:
    """The turns' stage durations and store round trips (Prometheus text), for the operators'
    scraper on the networks of ``METRICS_FROM`` only."""
    gateway = request.app[GATEWAY_KEY]
    allowed = parse_networks(gateway.settings.gateway.metrics_from)
    address = _ip(client_address(request))
    if address is None or not any(address in network for network in allowed):
        raise Forbidden("metrics are served to the operators' network only")
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
