"""nginx in front of the gateways, Debian's real nginx on loopback: the one template's two
renderings (production in ``deploy/``, ``run.py cluster``'s), round robin, websockets on the
app, console and phone-stream paths, the speech upstream, passive and active health checks,
per-address limits and body size in the gateways' JSON error shape, and a real gateway that
sees each client's own address through it. ``run.py cluster`` end to end: ``test_cluster.py``."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer

from channels.app_im import WS_PATH as APP_WS_PATH
from gateway import GatewayBuilder, Settings, build_app
from gateway.nginx_site import PRODUCTION, TemplateError, cluster_site, fill, production_site, render
from gateway.settings import GatewaySettings
from ivr.channel import STREAM_PATH
from nlu import OfflineNlu
from store.mongo import ConversationStore
from supervisor import free_port
from supervisor.health import HealthWatch
from supervisor.nginx import Nginx
from tests.helpers import LoopbackServer
from tests.processes import eventually

CONSOLE_WS_PATH = "/console/ws"
WEBSOCKET_PATHS = (APP_WS_PATH, CONSOLE_WS_PATH, STREAM_PATH)


class Backend(LoopbackServer):
    """A backend that says who it is and what nginx told it, on any path, and echoes on websockets."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.healthy = True

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/health", self._health)
        for path in WEBSOCKET_PATHS:
            app.router.add_get(path, self._ws)
        app.router.add_route("*", "/{tail:.*}", self._who)

    async def _health(self, _: web.Request) -> web.Response:
        return web.json_response({"ok": self.healthy}, status=200 if self.healthy else 503)

    async def _who(self, request: web.Request) -> web.Response:
        body = await request.read()
        seen = {h: request.headers.get(h) for h in ("Host", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto")}
        return web.json_response({"name": self.name, "path": request.path, "bytes": len(body), **seen})

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        async for frame in socket:
            await socket.send_str(f"{self.name}:{request.path}:{frame.data}")
        return socket


def settings_with(**limits: Any) -> Settings:
    return Settings().with_changes(**{f"limits__{k}": v for k, v in limits.items()})


class Proxy:
    """A private nginx rendered as ``run.py cluster`` renders it, in front of the given backends."""

    def __init__(self, tmp_path: Path, backends: list[Backend], voice: list[Backend], settings: Settings) -> None:
        self.port = free_port()
        self.nginx = Nginx(tmp_path / "nginx")
        self.backends, self.voice, self.settings = backends, voice, settings
        self.body_limit: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def site(self, down: frozenset[str] = frozenset()) -> str:
        site = cluster_site(
            self.settings,
            host="127.0.0.1",
            port=self.port,
            gateways=[b.port for b in self.backends],
            voice=[b.port for b in self.voice],
            down=[b.port for b in self.backends if b.name in down],
        )
        if self.body_limit is not None:
            site = dataclasses.replace(site, body_limit_bytes=self.body_limit)
        return render(site)

    async def keep_out(self, names: frozenset[str]) -> None:
        await self.nginx.reload(self.site(names))


async def start_proxy(
    tmp_path: Path, *names: str, voice: bool = False, settings: Settings | None = None, body_limit: int | None = None
) -> tuple[Proxy, list[Backend], Backend | None]:
    backends = [Backend(name) for name in names]
    speech = Backend("voice") if voice else None
    for backend in [*backends, *([speech] if speech else [])]:
        await backend.start()
    proxy = Proxy(tmp_path, backends, [speech] if speech else [], settings or Settings())
    proxy.body_limit = body_limit
    await proxy.nginx.start(proxy.site(), host="127.0.0.1", port=proxy.port)
    return proxy, backends, speech


async def stop_proxy(proxy: Proxy) -> None:
    await proxy.nginx.stop()
    for backend in [*proxy.backends, *proxy.voice]:
        await backend.stop()


def from_address(address: str) -> aiohttp.ClientSession:
    """A client whose connections come from ``address`` (any of 127.0.0.0/8 is this machine)."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(address, 0), force_close=True))


async def get_json(http: aiohttp.ClientSession, url: str, **kwargs: Any) -> tuple[int, dict[str, Any], Any]:
    async with http.request(kwargs.pop("method", "GET"), url, **kwargs) as response:
        return response.status, json.loads(await response.text()), response.headers


# -- the template and its two renderings ---------------------------------------------------


def test_the_production_file_is_the_template_rendered(tmp_path: Path) -> None:
    assert PRODUCTION.read_text(encoding="utf-8") == render(production_site()), (
        "deploy/nginx/aftersales.conf is out of date: run `run.py config nginx > deploy/nginx/aftersales.conf`"
    )
    local = render(cluster_site(Settings(), host="127.0.0.1", port=8080, gateways=[9001, 9002]))
    for path in (APP_WS_PATH, CONSOLE_WS_PATH, "/webhooks/twilio/voice"):
        assert path.strip("/") in local, f"the template no longer routes {path}"
    assert "server 127.0.0.1:9001 max_fails=1 fail_timeout=5s;" in local and "listen 127.0.0.1:8080;" in local


def test_servers_kept_out_are_down_unless_that_is_all_of_an_upstream() -> None:
    site = cluster_site(Settings(), host="127.0.0.1", port=8080, gateways=[9001, 9002], voice=[9003], down=[9002, 9003])
    assert site.gateways.lines()[1].endswith(" down;") and not site.gateways.lines()[0].endswith(" down;")
    assert not site.voice.lines()[0].endswith(" down;"), "the only speech gateway is better than none"


def test_a_placeholder_without_a_value_or_a_value_without_a_placeholder_is_an_error() -> None:
    assert fill("a {{x}};\n    {{lines}}\n", {"x": "1", "lines": ["b;", "c;"]}) == "a 1;\n    b;\n    c;\n"
    with pytest.raises(TemplateError, match="no value"):
        fill("a {{x}};", {})
    with pytest.raises(TemplateError, match="does not use"):
        fill("a;", {"x": "1"})


async def test_nginx_accepts_the_production_rendering(tmp_path: Path) -> None:
    """``nginx -t`` on the production file as deployed, with a throw-away certificate in place."""
    certs = tmp_path / "certs"
    certs.mkdir()
    await asyncio.to_thread(
        subprocess.run,
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=cs.example.com",
         "-keyout", str(certs / "privkey.pem"), "-out", str(certs / "fullchain.pem")],
        check=True, capture_output=True,
    )  # fmt: skip
    nginx = Nginx(tmp_path / "nginx")
    nginx.write(PRODUCTION.read_text(encoding="utf-8").replace("/etc/ssl/aftersales/", f"{certs}/"))
    await nginx.check()


# -- a real nginx in front of backends -------------------------------------------------------


async def test_round_robin_forwarded_headers_websockets_and_the_speech_upstream(tmp_path: Path) -> None:
    proxy, _, _ = await start_proxy(tmp_path, "one", "two", voice=True)
    try:
        async with from_address("127.0.0.2") as http:
            seen = [await get_json(http, f"{proxy.url}/console/inbox", headers={"X-Forwarded-For": "198.51.100.9"})]
            seen += [await get_json(http, f"{proxy.url}/webhooks/rest/webhook", method="POST") for _ in range(3)]
            assert sorted(body["name"] for _, body, _ in seen) == ["one", "one", "two", "two"]
            first = seen[0][1]
            assert first["X-Forwarded-For"] == "198.51.100.9, 127.0.0.2", "nginx adds the address it saw"
            assert first["Host"] == first["X-Forwarded-Host"] == f"127.0.0.1:{proxy.port}", (
                "with the port (CSRF checks)"
            )
            assert first["X-Forwarded-Proto"] == "http"
            # The phone line goes to the speech gateway only.
            voice = [await get_json(http, f"{proxy.url}/webhooks/twilio/voice", method="POST") for _ in range(3)]
            assert {body["name"] for _, body, _ in voice} == {"voice"}
            for path in WEBSOCKET_PATHS:
                async with http.ws_connect(f"{proxy.url}{path}") as socket:
                    await socket.send_str("你好")
                    name, echoed_path, text = (await socket.receive(timeout=5)).data.split(":", 2)
                    assert (echoed_path, text) == (path, "你好")
                    assert name == "voice" if path == STREAM_PATH else name in ("one", "two")
    finally:
        await stop_proxy(proxy)


async def test_dead_and_unhealthy_gateways_are_skipped_and_none_left_is_a_json_503(tmp_path: Path) -> None:
    proxy, (one, two), _ = await start_proxy(tmp_path, "one", "two")
    watch = HealthWatch(
        {b.name: f"{b.base_url}/health" for b in (one, two)}, proxy.keep_out, interval=0.1, timeout=1, fails=2
    )
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:

            async def names(n: int = 6) -> set[str]:
                return {(await get_json(http, f"{proxy.url}/x"))[1]["name"] for _ in range(n)}

            # Active: a gateway whose /health says 503 is taken out (a reload) and put back.
            watch.start()
            two.healthy = False
            await eventually(lambda: asyncio.sleep(0, watch.out == {"two"}), 10)
            assert await names() == {"one"}
            two.healthy = True
            await eventually(lambda: asyncio.sleep(0, watch.out == frozenset()), 10)
            assert await names() == {"one", "two"}
            assert proxy.nginx.reloads == 2
            # With every gateway unhealthy none is kept out: degraded answers beat none.
            one.healthy = two.healthy = False
            await asyncio.sleep(0.5)
            assert watch.out == frozenset() and watch.unhealthy() == {"one", "two"}
            await watch.stop()

            # Passive: a gateway that refuses connections is skipped at once, before any check.
            one.healthy = two.healthy = True
            await one.stop()
            assert await names() == {"two"}
            await two.stop()
            status, body, headers = await get_json(http, f"{proxy.url}/webhooks/rest/webhook", method="POST")
            assert (status, body["error"]["code"], headers["Retry-After"]) == (503, "unavailable", "2")
    finally:
        await watch.stop()
        await stop_proxy(proxy)


async def test_limits_per_client_address_and_body_size_answer_in_the_gateways_shape(tmp_path: Path) -> None:
    settings = settings_with(ip_per_minute=1.0, ip_burst=2, ip_exempt=("127.0.0.1/32",))
    proxy, _, _ = await start_proxy(tmp_path, "one", settings=settings, body_limit=64 * 1024)
    rest = f"{proxy.url}/webhooks/rest/webhook"
    try:
        async with from_address("127.0.0.2") as flooder, from_address("127.0.0.3") as calm:
            statuses = [(await get_json(flooder, rest, method="POST"))[0] for _ in range(6)]
            assert statuses[:2] == [200, 200] and statuses[-2:] == [429, 429]
            status, body, headers = await get_json(flooder, f"{proxy.url}/chat")
            error = body["error"]
            assert status == 429 and error["code"] == "rate_limited" and error["details"]["retry_after"] >= 1
            assert int(headers["Retry-After"]) >= 1 and headers["Content-Type"] == "application/json"
            # Providers' webhooks come from few addresses: never limited per address.
            assert (await get_json(flooder, f"{proxy.url}/webhooks/telegram/webhook", method="POST"))[0] == 200
            assert (await get_json(calm, rest, method="POST"))[0] == 200, "another address has its own limit"
        async with from_address("127.0.0.1") as exempt:
            assert {(await get_json(exempt, rest, method="POST"))[0] for _ in range(6)} == {200}
            status, body, _ = await get_json(exempt, rest, method="POST", data=b"x" * (65 * 1024))
            assert (status, body["error"]["code"]) == (413, "too_large")
            assert (await get_json(exempt, rest, method="POST", data=b"x" * (60 * 1024)))[1]["bytes"] == 60 * 1024
    finally:
        await stop_proxy(proxy)


@pytest_asyncio.fixture
async def gateway_behind_nginx(store: ConversationStore, tmp_path: Path) -> AsyncIterator[str]:
    """A real gateway (per-IP limit of 2, nothing exempt, loopback trusted as its proxy) behind
    nginx with nginx's own per-address limit off: what is limited is the gateway's doing."""
    settings = Settings(gateway=GatewaySettings(var_dir=tmp_path / "var")).with_changes(
        limits__ip_per_minute=1.0, limits__ip_burst=2, limits__ip_exempt=(), limits__trusted_proxies=("127.0.0.1/32",)
    )
    gateway = GatewayBuilder(settings).store(store).nlu(OfflineNlu("not needed")).build()
    server = TestServer(build_app(gateway), host="127.0.0.1")
    await server.start_server()
    assert server.port is not None
    port = free_port()
    nginx = Nginx(tmp_path / "nginx")
    site = cluster_site(settings_with(ip_per_minute=0.0), host="127.0.0.1", port=port, gateways=[server.port])
    await nginx.start(render(site), host="127.0.0.1", port=port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await nginx.stop()
        await server.close()


async def test_the_gateway_sees_each_clients_own_address_through_nginx(gateway_behind_nginx: str) -> None:
    base = gateway_behind_nginx
    async with from_address("127.0.0.2") as first, from_address("127.0.0.3") as second:
        statuses = [(await first.get(f"{base}/webhooks/rest/")).status for _ in range(3)]
        assert statuses == [200, 200, 429], "the gateway counts 127.0.0.2, not nginx's 127.0.0.1"
        assert (await second.get(f"{base}/webhooks/rest/")).status == 200
        # The console's live feed checks the Origin against the host the browser used (port included):
        # through nginx its own origin passes (then: not signed in), another site's does not.
        for origin, status in (("http://evil.example", 403), (base, 401)):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await second.ws_connect(f"{base}/console/ws", headers={"Origin": origin})
            assert refused.value.status == status, origin
