"""The loopback balancer (``run.py cluster``): round-robin over healthy backends, websockets
passed through, unhealthy backends skipped, a clear 503 when none is up; and the cluster
command itself, two real gateway processes behind it, one killed and started again."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import aiohttp
from aiohttp import web

from nlu.server import EmbeddedRasaServer
from store.embedded import EmbeddedMongo
from supervisor import free_port
from supervisor.balancer import Balancer
from tests.conftest import DEMO_ORDERS, REPO_ROOT
from tests.helpers import LoopbackServer
from tests.processes import eventually


class Backend(LoopbackServer):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.healthy = True

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/health", self._health)
        app.router.add_get("/who", self._who)
        app.router.add_get("/ws", self._ws)

    async def _health(self, _: web.Request) -> web.Response:
        return web.json_response({"ok": self.healthy}, status=200 if self.healthy else 503)

    async def _who(self, _: web.Request) -> web.Response:
        return web.Response(text=self.name)

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        async for frame in socket:
            await socket.send_str(f"{self.name}:{frame.data}")
        return socket


async def test_round_robin_websockets_health_and_none_left() -> None:
    one, two = Backend("one"), Backend("two")
    await one.start()
    await two.start()
    balancer = Balancer([("127.0.0.1", one.port), ("127.0.0.1", two.port)], interval=0.1)
    port = await balancer.start("127.0.0.1", 0)
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:

            async def who() -> str:
                async with http.get(f"{base}/who") as response:
                    return await response.text()

            assert sorted([await who() for _ in range(4)]) == ["one", "one", "two", "two"]
            async with http.ws_connect(f"{base}/ws") as socket:
                await socket.send_str("你好")
                echoed = (await socket.receive(timeout=5)).data
                assert echoed in ("one:你好", "two:你好")

            two.healthy = False
            await eventually(lambda: asyncio.sleep(0, not balancer.backends[1].healthy), 5)
            assert {await who() for _ in range(4)} == {"one"}

            await one.stop()
            await eventually(lambda: asyncio.sleep(0, not balancer.backends[0].healthy), 5)
            async with http.get(f"{base}/who") as response:
                assert response.status == 503
                assert (await response.json())["error"] == "unavailable"
    finally:
        await balancer.stop()
        await two.stop()


async def test_the_cluster_serves_through_the_balancer_and_restarts_a_dead_gateway(
    mongo: EmbeddedMongo, rasa: EmbeddedRasaServer, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "MONGODB_URI": mongo.uri,
        "MONGODB_DATABASE": f"cluster_{uuid.uuid4().hex[:8]}",
        "RASA_URL": rasa.url,
        "RASA_TOKEN": rasa.token,
        "GATEWAY_VAR_DIR": str(tmp_path / "var"),
    }
    command = [sys.executable, str(REPO_ROOT / "run.py"), "cluster", "--gateways", "2", "--port", str(port)]
    command += ["--seed-orders", str(DEMO_ORDERS)]
    with (tmp_path / "cluster.log").open("wb") as out:
        cluster = await asyncio.create_subprocess_exec(
            *command, env=env, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:

            async def healthy() -> bool:
                assert cluster.returncode is None, (tmp_path / "cluster.log").read_text()[-2000:]
                try:
                    async with http.get(f"{base}/health") as response:
                        return response.status == 200
                except aiohttp.ClientError:
                    return False

            await eventually(healthy, 120)

            async def ask(sender: str) -> str:
                body = {"sender": sender, "message": "帮我查一下订单202611150001到哪了"}
                async with http.post(f"{base}/webhooks/rest/webhook", json=body) as response:
                    assert response.status == 200
                    return str((await response.json())[0]["text"])

            assert all("202611150001" in text for text in [await ask(f"c{i}") for i in range(4)])
            logs = sorted((tmp_path / "var" / "log").glob("gateway-*.log"))
            assert len(logs) == 2

            # Kill one gateway: the balancer routes around it and the cluster starts it again.
            victim = _gateway_pids(cluster.pid)[0]
            os.kill(victim, signal.SIGKILL)
            assert all("202611150001" in text for text in [await ask(f"d{i}") for i in range(4)])

            async def restarted() -> bool:
                return len(_gateway_pids(cluster.pid)) == 2 and victim not in _gateway_pids(cluster.pid)

            await eventually(restarted, 60)
            await eventually(healthy, 60)
    finally:
        cluster.send_signal(signal.SIGTERM)
        await asyncio.wait_for(cluster.wait(), 60)
    assert _gateway_pids(cluster.pid) == []


def _gateway_pids(parent: int) -> list[int]:
    """The ``run.py serve`` processes the cluster started (its direct children)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent and b"serve" in args and any(a.endswith(b"run.py") for a in args):
            pids.append(int(proc.name))
    return pids
