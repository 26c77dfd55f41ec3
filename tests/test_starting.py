"""While the gateway is starting, one middleware answers every request but ``/health`` with 503
``starting`` and a ``Retry-After``; handlers carry no check of their own."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway import GatewayBuilder, Settings, build_app
from gateway.settings import GatewaySettings
from nlu import OfflineNlu
from store.mongo import ConversationStore

STARTING = {"error": {"code": "starting", "message": "the gateway is starting", "details": {}}}


async def test_requests_while_starting_get_the_one_503_and_handlers_need_no_check(
    store: ConversationStore, tmp_path: Path
) -> None:
    settings = Settings(gateway=GatewaySettings(var_dir=tmp_path / "var"))
    gateway = GatewayBuilder(settings).store(store).nlu(OfflineNlu("no NLU in this test")).build()
    finish_start = gateway.start
    called: list[str] = []

    async def not_yet(*, wait_for_nlu: bool = True) -> None:
        """The web server is up, start-up is not over: the state between the two."""

    async def unguarded(_: web.Request) -> web.Response:
        called.append("probe")  # no check of its own: it would fail on a part that is not wired
        assert gateway.store is not None
        return web.json_response({"conversations": await gateway.store.conversations.count_documents({})})

    gateway.start = not_yet  # type: ignore[method-assign]
    app = build_app(gateway)
    app.router.add_get("/probe", unguarded)
    async with TestClient(TestServer(app)) as http:
        for method, path in [
            ("GET", "/probe"),
            ("POST", "/webhooks/rest/webhook"),
            ("GET", "/console/login"),
            ("GET", "/api/backoffice/tickets"),
            ("GET", "/metrics"),
        ]:
            response = await http.request(method, path, json={"sender": "s", "message": "hi"})
            assert response.status == 503, path
            assert await response.json() == STARTING, path
            assert response.headers["Retry-After"] == "5", path
        assert called == []

        health = await http.get("/health")  # served during start-up: it says so itself
        assert health.status == 503
        assert (await health.json())["status"] == "starting"

        await finish_start(wait_for_nlu=False)
        assert gateway.serving
        probe = await http.get("/probe")
        assert probe.status == 200 and called == ["probe"]
