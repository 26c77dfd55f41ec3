"""Kill a real gateway process (``run.py serve``) between receipt and reply: after a restart
the reply still goes out, exactly once, and the provider's retry of the same update changes
nothing. The store is an nx-27017 server of the test's own with its files on disk (restarted
too, so only what reached disk counts); the NLU is the session's Rasa server, for a quick start."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import aiohttp

from channels.telegram import SECRET_HEADER, WEBHOOK_PATH
from nlu.server import EmbeddedRasaServer
from store.embedded import EmbeddedMongo
from store.mongo import ConversationStore
from supervisor import free_port
from tests.processes import eventually, serve_process
from tests.telegram_standin import TOKEN, BotApiStandIn, private_update

SECRET = "crash-test-secret"
CHAT = 880011


async def test_a_killed_gateway_sends_the_reply_after_restart_and_only_once(
    own_mongo: EmbeddedMongo, rasa: EmbeddedRasaServer, standin: BotApiStandIn, tmp_path: Path
) -> None:
    database = f"crash_{uuid.uuid4().hex[:10]}"
    port = free_port()
    env = {
        **os.environ,
        "MONGODB_URI": own_mongo.uri,
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
        # The killed process held the Telegram sender's lease: the restarted one (a new
        # process identity) takes it over once it runs out.
        "OUTBOX_LEASE_SECONDS": "2",
    }
    gateway = serve_process(env, port, tmp_path / "gateway.log")
    store = ConversationStore.from_uri(own_mongo.uri, database)
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
        await own_mongo.stop()  # the store restarts too: the unsent reply must be on disk
        await own_mongo.start()
        store = ConversationStore.from_uri(own_mongo.uri, database)
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
