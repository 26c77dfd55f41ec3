"""Every route of a fully configured gateway refuses a stranger, except the few that are public
by design; so a route added later without authentication fails here until it is listed."""

from __future__ import annotations

import re
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from backoffice.settings import BackofficeSettings
from gateway import GatewayBuilder, Settings, build_app
from gateway.settings import GatewaySettings
from nlu import OfflineNlu
from store.mongo import ConversationStore

PUBLIC = {
    ("GET", "/health"),  # readiness for the load balancer
    ("GET", "/metrics"),  # the operators' scraper: METRICS_FROM networks only (loopback here; see test_metrics)
    ("GET", "/webhooks/rest/"),  # "the REST channel is up"
    ("POST", "/webhooks/rest/webhook"),  # open unless REST_WEBHOOK_TOKEN is set (see the test below)
    ("GET", "/chat"),  # the chat page; it signs in with the app's user token
    ("GET", "/console"),  # a redirect to /console/
    ("GET", "/console/login"),
    ("POST", "/console/login"),  # the form has its own CSRF cookie and sign-in throttling
    ("GET", "/console/assets/{name}"),
    ("GET", "/console/assets/vendor/{name}"),
    ("GET", "/api/openapi.json"),
}
REFUSED = {401, 403}


def configured(tmp_path: Path, **extra: object) -> Settings:
    return (
        Settings(
            gateway=GatewaySettings(var_dir=tmp_path / "var"),
            backoffice=BackofficeSettings(
                admin_token="route-auth-admin", agent_api_token="route-auth-agent", sweep_seconds=0
            ),
        )
        .with_channel(
            "telegram",
            bot_token="123456:" + "A" * 35,
            webhook_secret="route-auth-telegram",
            api_base_url="http://127.0.0.1:9",
        )
        .with_channel("app", secret="route-auth-app")
        .with_channel("sms", account_sid="AC" + "1" * 32, auth_token="route-auth-twilio", from_number="+15005550006")
        .with_channel("rest", **extra)
    )


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x1", path)


async def test_every_route_refuses_a_stranger_unless_it_is_public(store: ConversationStore, tmp_path: Path) -> None:
    gateway = GatewayBuilder(configured(tmp_path)).store(store).nlu(OfflineNlu("not needed")).build()
    app = build_app(gateway)
    async with TestClient(TestServer(app, host="127.0.0.1")) as http:
        routes = {
            (route.method, info.get("formatter") or info.get("path"))
            for route in app.router.routes()
            if route.method != "HEAD" and (info := route.resource.get_info() if route.resource else {})
        }
        assert ("POST", "/webhooks/telegram/webhook") in routes and ("POST", "/webhooks/twilio/sms") in routes
        open_routes = []
        for method, path in sorted(routes - PUBLIC):
            # A browser's cookie-less request, a bearer token that is no one's, a forged provider header.
            for headers in ({}, {"Authorization": "Bearer not-a-token", "X-Telegram-Bot-Api-Secret-Token": "no"}):
                response = await http.request(
                    method, concrete(path), headers={**headers, "Origin": str(http.make_url(""))}, allow_redirects=False
                )
                to_sign_in = response.status == 303 and response.headers["Location"].startswith("/console/login")
                if response.status not in REFUSED and not to_sign_in:
                    open_routes.append(f"{method} {path} → {response.status}")
        assert not open_routes, "routes that serve a stranger:\n" + "\n".join(open_routes)


async def test_the_rest_webhook_needs_the_token_once_one_is_set(store: ConversationStore, tmp_path: Path) -> None:
    settings = configured(tmp_path, webhook_token="shop-backend-token")
    gateway = GatewayBuilder(settings).store(store).nlu(OfflineNlu("not needed")).build()
    async with TestClient(TestServer(build_app(gateway), host="127.0.0.1")) as http:
        message = {"sender": "c1", "message": "你好"}
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "shop-backend-token"}):
            response = await http.post("/webhooks/rest/webhook", json=message, headers=headers)
            assert response.status == 401 and (await response.json())["error"]["code"] == "unauthorized"
        assert await store.messages.count_documents({}) == 0
        response = await http.post(
            "/webhooks/rest/webhook", json=message, headers={"Authorization": "Bearer shop-backend-token"}
        )
        assert response.status == 200 and isinstance(await response.json(), list)
