"""``run.py cluster`` end to end: two real gateway processes on one store behind the cluster's
own nginx (Debian's), answering REST and an app IM websocket through it, round robin over both,
nginx's per-address limit, a gateway killed and started again while nginx routes around it, and
nothing left running after SIGTERM."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aiohttp
import pytest

from channels.app_im import WS_PATH, sign_user
from nlu.server import EmbeddedRasaServer
from store.embedded import EmbeddedMongo
from supervisor import free_port
from tests.conftest import DEMO_ORDERS, REPO_ROOT
from tests.processes import eventually

pytestmark = pytest.mark.slow
APP_SECRET = "cluster-app-secret"


def _children(parent: int) -> list[tuple[int, list[bytes]]]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent:
            found.append((int(proc.name), args))
    return found


def gateway_pids(cluster: int) -> list[int]:
    """The ``run.py serve`` processes the cluster started (its direct children)."""
    return [pid for pid, args in _children(cluster) if b"serve" in args and any(a.endswith(b"run.py") for a in args)]


def nginx_pids(prefix: Path) -> list[int]:
    """Every nginx process (master and workers) of the private instance under ``prefix``."""
    masters = [
        int(proc.name)
        for proc in Path("/proc").iterdir()
        if proc.name.isdigit() and _cmdline_has(proc, str(prefix).encode()) and _cmdline_has(proc, b"nginx")
    ]
    return masters + [pid for master in masters for pid, _ in _children(master)]


def gateway_port(pid: int) -> int:
    """The port a ``run.py serve`` process was told to listen on."""
    args = (Path("/proc") / str(pid) / "cmdline").read_bytes().split(b"\0")
    return int(args[args.index(b"--port") + 1])


async def refused(port: int) -> bool:
    """Nothing listens on ``port`` any more: the process's sockets are all closed (a killed
    process's leader is a zombie before its other threads have exited and closed its files)."""
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return True
    writer.close()
    return False


def _cmdline_has(proc: Path, needle: bytes) -> bool:
    try:
        return needle in (proc / "cmdline").read_bytes()
    except OSError:
        return False


async def test_the_cluster_serves_through_nginx_and_restarts_a_dead_gateway(
    mongo: EmbeddedMongo, rasa: EmbeddedRasaServer, tmp_path: Path
) -> None:
    port = free_port()
    var = tmp_path / "var"
    env = {
        **os.environ,
        "MONGODB_URI": mongo.uri,
        "MONGODB_DATABASE": f"cluster_{uuid.uuid4().hex[:8]}",
        "RASA_URL": rasa.url,
        "RASA_TOKEN": rasa.token,
        "GATEWAY_VAR_DIR": str(var),
        "APP_IM_SECRET": APP_SECRET,
        # nginx limits 127.0.0.2 (three at once, then one a minute); the test's own 127.0.0.1 is exempt.
        "RATE_LIMIT_IP_EXEMPT": "127.0.0.1/32",
        "RATE_LIMIT_IP_PER_MINUTE": "1",
        "RATE_LIMIT_IP_BURST": "3",
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
                assert cluster.returncode is None, (tmp_path / "cluster.log").read_text()[-3000:]
                try:
                    async with http.get(f"{base}/health") as response:
                        return response.status == 200
                except aiohttp.ClientError:
                    return False

            await eventually(healthy, 180)
            await eventually(
                lambda: asyncio.sleep(0, "Cluster listening" in (tmp_path / "cluster.log").read_text()), 60
            )

            async def ask(sender: str) -> str:
                body = {"sender": sender, "message": "帮我查一下订单202611150001到哪了"}
                async with http.post(f"{base}/webhooks/rest/webhook", json=body) as response:
                    assert response.status == 200, await response.text()
                    return str((await response.json())[0]["text"])

            assert all("202611150001" in text for text in [await ask(f"c{i}") for i in range(4)])
            assert sorted(p.name for p in (var / "log").glob("gateway-*.log")) == ["gateway-1.log", "gateway-2.log"]

            # Round robin: nginx's access log names both gateways' ports as upstreams.
            async def both_served() -> bool:
                log = (var / "nginx" / "access.log").read_text() if (var / "nginx" / "access.log").exists() else ""
                return len(set(re.findall(r"webhook HTTP/1.1\" 200 .* upstream=127\.0\.0\.1:(\d+)", log))) == 2

            await eventually(both_served, 10)

            # The app IM websocket through nginx: a message in, its reply back on the socket.
            user = f"app-{uuid.uuid4().hex[:6]}"
            expires = int(time.time()) + 3600
            query = f"user={user}&expires={expires}&token={sign_user(APP_SECRET, user, expires)}"
            async with http.ws_connect(f"{base}{WS_PATH}?{query}") as socket:
                await socket.send_json({"type": "message", "client_id": "c1", "text": "订单202611150001到哪了"})
                while (frame := await socket.receive_json(timeout=30)).get("type") != "message":
                    pass
                assert frame["direction"] == "out" and "202611150001" in frame["text"]

            # nginx limits per client address, across both gateways, in the gateways' JSON shape.
            async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(local_addr=("127.0.0.2", 0), force_close=True)
            ) as other:
                statuses = []
                for _ in range(6):
                    async with other.get(f"{base}/chat") as response:
                        statuses.append(response.status)
                        if response.status == 429:
                            body = await response.json()
                            assert body["error"]["code"] == "rate_limited" and response.headers["Retry-After"]
                assert statuses[:3] == [200, 200, 200] and statuses[-1] == 429, statuses

            # Kill one gateway: once it has exited (its sockets closed; a request in flight at that
            # moment gets nginx's 503 "retry later"), nginx routes around it (a refused connection
            # goes to the next server) and the cluster starts it again.
            victim = gateway_pids(cluster.pid)[0]
            victim_port = gateway_port(victim)
            os.kill(victim, signal.SIGKILL)
            await eventually(lambda: refused(victim_port), 10)
            assert all("202611150001" in text for text in [await ask(f"d{i}") for i in range(4)])

            async def restarted() -> bool:
                pids = gateway_pids(cluster.pid)
                return len(pids) == 2 and victim not in pids

            await eventually(restarted, 60)
            await eventually(healthy, 120)
            assert nginx_pids(var / "nginx"), "nginx runs under the var dir"
    finally:
        cluster.send_signal(signal.SIGTERM)
        await asyncio.wait_for(cluster.wait(), 60)
    assert gateway_pids(cluster.pid) == []
    assert nginx_pids(var / "nginx") == [], "nginx stopped with the cluster"
