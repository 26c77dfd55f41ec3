"""Kill a real gateway process (``run.py serve``) between receipt and reply: after a restart
the reply still goes out, exactly once, and the provider's retry of the same update changes
nothing. The store is an nx-27017 server of the test's own with its files on disk (restarted
too, so only what reached disk counts); the NLU is the session's Rasa server, for a quick start."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest_asyncio

from channels.telegram import SECRET_HEADER, WEBHOOK_PATH
from nlu.server import EmbeddedRasaServer
from store import ConversationStore
from store.embedded import EmbeddedMongo
from supervisor import free_port
from tests.conftest import DEMO_ORDERS, REPO_ROOT
from tests.telegram_standin import TOKEN, BotApiStandIn, private_update

SECRET = "crash-test-secret"
CHAT = 880011


class GatewayProcess:
    def __init__(self, env: dict[str, str], port: int, log: Path) -> None:
        self.env, self.port, self.log = env, port, log
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, str(REPO_ROOT / "run.py"), "serve", "--seed-orders", str(DEMO_ORDERS),
                env=self.env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 90
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                assert self.process.returncode is None, f"the gateway exited: {self.log.read_text()[-2000:]}"
                try:
                    async with http.get(f"{self.url}/health") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.2)
        raise AssertionError(f"the gateway did not become healthy: {self.log.read_text()[-2000:]}")

    async def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)  # no clean-up, no flush: a crash
        await asyncio.wait_for(self.process.wait(), 30)

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


async def eventually(check: object, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await check():  # type: ignore[operator]
            return
        await asyncio.sleep(0.1)
    raise AssertionError("timed out waiting")


@pytest_asyncio.fixture
async def mongo(tmp_path: Path) -> AsyncIterator[EmbeddedMongo]:
    """A persistent store of this test's own (``--data-dir``), not the session's."""
    server = EmbeddedMongo(tmp_path / "mongo")
    await server.start()
    yield server
    await server.stop()


async def test_a_killed_gateway_sends_the_reply_after_restart_and_only_once(
    mongo: EmbeddedMongo, rasa: EmbeddedRasaServer, standin: BotApiStandIn, tmp_path: Path
) -> None:
    database = f"crash_{uuid.uuid4().hex[:10]}"
    port = free_port()
    env = {
        **os.environ,
        "MONGODB_URI": mongo.uri,
        "MONGODB_DATABASE": database,
        "RASA_URL": rasa.url,
        "RASA_TOKEN": rasa.token,
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "TELEGRAM_API_BASE_URL": standin.base_url,
        "GATEWAY_PORT": str(port),
        "GATEWAY_VAR_DIR": str(tmp_path / "var"),
        "OUTBOX_POLL_SECONDS": "0.1",
        "OUTBOX_BASE_DELAY_SECONDS": "0.1",
    }
    gateway = GatewayProcess(env, port, tmp_path / "gateway.log")
    store = ConversationStore.from_uri(mongo.uri, database)
    update = private_update(5001, CHAT, text="查一下订单202611150001")
    headers = {SECRET_HEADER: SECRET}
    try:
        await gateway.start()
        standin.hang_sends = True  # the reply will be stored, and stuck on its way out
        async with (
            aiohttp.ClientSession() as http,
            http.post(gateway.url + WEBHOOK_PATH, json=update, headers=headers) as response,
        ):
            assert response.status == 200, "acknowledged only once stored"

        async def sending() -> bool:
            return standin.send_attempts >= 1

        await eventually(sending)
        await gateway.kill()
        assert await store.count_messages(direction="in") == 1
        assert await store.count_messages(direction="out", delivered=False) >= 1, "stored, not sent"
        assert standin.sent == []
        await store.close()
        await mongo.stop()  # the store restarts too: the unsent reply must be on disk
        await mongo.start()
        store = ConversationStore.from_uri(mongo.uri, database)
        assert await store.count_messages(direction="out", delivered=False) >= 1

        standin.hang_sends = False
        await gateway.start()

        async def delivered() -> bool:
            return await store.count_messages(direction="out", delivered=False) == 0

        await eventually(delivered)
        replies = await store.count_messages(direction="out")
        assert len(standin.sent) == replies and "202611150001" in standin.sent[0]["text"]
        assert len({m["text"] for m in standin.sent}) == len(standin.sent), "each reply exactly once"

        # Telegram never got its 200 for all it knows: it retries the same update.
        async with (
            aiohttp.ClientSession() as http,
            http.post(gateway.url + WEBHOOK_PATH, json=update, headers=headers) as response,
        ):
            assert response.status == 200
        await asyncio.sleep(1.0)
        assert await store.count_messages(direction="in") == 1
        assert await store.count_messages(direction="out") == replies
        assert len(standin.sent) == replies, "no reply twice"
        assert TOKEN not in gateway.log.read_text(), "the bot token must not be written to the log"
    finally:
        await gateway.stop()
        await store.client.drop_database(database)
        await store.close()
