"""``/api/openapi.json`` is rendered from what each route declares where it is defined
(``channels.operations.route``): a route made without a declaration fails here, and the published
operations keep the paths, methods and operation ids clients generated code from
(``tests/data/openapi_operations.txt``, taken from the hand-written document it replaced).

No store and no server: the app is built, not started, and the document rendered from its router.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from backoffice.settings import BackofficeSettings
from channels.operations import Operation, route
from gateway import GatewayBuilder, Settings, build_app, openapi
from gateway.settings import GatewaySettings
from nlu import OfflineNlu

PUBLISHED = Path(__file__).parent / "data" / "openapi_operations.txt"
TWILIO_SID = "AC" + "1" * 32
PUBLISHED_SCHEMAS = {
    "ActualRequest", "ApproveReturnBody", "Assignment", "Attachments", "CommentBody", "CompensateBody",
    "ConfigDocument", "Error", "ExchangeDelivery", "GeoPoint", "Move", "NewPassword", "NewStaff", "Objective",
    "ObjectiveMode", "OrderActionBody", "OwnPassword", "OwnStatus", "Parcels", "PickupRequest", "PlanRequest",
    "Reason", "RedirectBody", "ReplanRequest", "ResendBody", "Role", "Score", "StaffChanges", "TicketStatus",
    "TicketSubmission", "TicketType", "Transfer",
}  # fmt: skip
"""The schemas of the hand-written document this one replaced."""


def every_channel(tmp_path: Path, **rest: object) -> Settings:
    """Every channel that has HTTP routes turned on, so every route the gateway has is served."""
    return (
        Settings(
            gateway=GatewaySettings(var_dir=tmp_path / "var"),
            backoffice=BackofficeSettings(admin_token="openapi-admin", agent_api_token="openapi-agent"),
        )
        .with_channel("telegram", bot_token="123456:" + "A" * 35, webhook_secret="s", api_base_url="http://127.0.0.1:9")
        .with_channel("app", secret="openapi-app")
        .with_channel("sms", account_sid=TWILIO_SID, auth_token="t", from_number="+15005550006")
        .with_channel("wechat", app_id="wx0123456789", app_secret="x", token="y")
        .with_channel(
            "voice", voice_number="+15005550007", account_sid=TWILIO_SID, auth_token="t", agent_number="+15005550008"
        )
        .with_channel("rest", **rest)
    )


def app_for(settings: Settings) -> web.Application:
    return build_app(GatewayBuilder(settings).nlu(OfflineNlu("not needed")).build())


def operations(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f"{m.upper()} {p}": op for p, item in document["paths"].items() for m, op in item.items()}


def test_every_route_the_gateway_serves_declares_its_operation(tmp_path: Path) -> None:
    app = app_for(every_channel(tmp_path, webhook_token="shop"))
    served = {f"{r.method} {r.resource.get_info().get('formatter') or r.resource.get_info().get('path')}"
              for r in app.router.routes() if r.resource is not None}  # fmt: skip
    assert {"POST /webhooks/wechat", "GET /webhooks/twilio/voice/stream", "GET /console/ws"} <= served
    assert openapi.undeclared(app) == [], "routes made without channels.operations.route"


def test_a_route_without_a_declaration_is_caught() -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response()

    declared = route(Operation("GET", "/declared", "A declared route", "tests"), handler)
    app = web.Application()
    app.router.add_routes([declared, web.get("/bare", handler), web.post("/borrowed", declared.handler)])
    assert openapi.undeclared(app) == ["GET /bare", "POST /borrowed"]  # the HEADs aiohttp adds are not routes of ours
    assert list(operations(openapi.document(app))) == ["GET /declared"]


def test_the_published_operations_keep_their_paths_methods_and_ids(tmp_path: Path) -> None:
    document = openapi.document(app_for(every_channel(tmp_path, webhook_token="shop")))
    published = sorted(f"{key} {op['operationId']}" for key, op in operations(document).items())
    assert published == PUBLISHED.read_text(encoding="utf-8").split("\n")[:-1]
    assert set(document["components"]["schemas"]) >= PUBLISHED_SCHEMAS
    assert set(document["components"]["securitySchemes"]) == {
        "appUserToken", "bearer", "downstreamSignature", "restToken", "telegramSecret", "twilioSignature",
    }  # fmt: skip


def test_refusals_are_the_one_error_shape_with_the_codes_a_route_declares(tmp_path: Path) -> None:
    ops = operations(openapi.document(app_for(every_channel(tmp_path))))
    for key, op in ops.items():
        for status, answer in op["responses"].items():
            if int(status) >= 400 and not key.startswith("GET /health"):
                assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}, key
    callback = ops["POST /downstream/payment/refunds"]["responses"]
    assert callback["401"]["x-error-codes"] == ["invalid_signature", "stale_timestamp"]
    assert "`unknown_request`" in callback["404"]["description"]
    assert "security" not in ops["POST /webhooks/rest/webhook"]  # open without REST_WEBHOOK_TOKEN


def test_the_document_lists_only_what_is_on(tmp_path: Path) -> None:
    default = Settings(gateway=GatewaySettings(var_dir=tmp_path / "var"))
    ops = operations(openapi.document(app_for(default)))
    assert "POST /webhooks/rest/webhook" in ops
    assert "POST /webhooks/telegram/webhook" not in ops and "POST /webhooks/twilio/sms" not in ops
