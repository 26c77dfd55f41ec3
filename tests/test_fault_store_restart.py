"""Fault: the conversation store restarts under a running gateway. The store is an nx-27017 of
the test's own with its files on disk (stopped and started on the same port); the gateway is
the real one (REST, app IM and Telegram against the Bot API stand-in), never restarted.

While the store is down, nothing is acknowledged: REST gets 503 ``store_unavailable`` with
Retry-After, Telegram's webhook a non-2xx (so Telegram redelivers), the app an error frame (the
client resends with the same ``client_id``), and ``/health`` says the store is missing. When it
is back, pymongo reconnects and the gateway carries on: the retried messages are stored once and
answered, the outbox sends what was waiting, a reply sent just as the store went away is not
sent again, the console's live feed and the backoffice sweep resume.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from backoffice.settings import BackofficeSettings
from channels.app_im import WS_PATH
from channels.telegram import SECRET_HEADER, WEBHOOK_PATH
from gateway import GatewayBuilder, Settings, build_app
from gateway.settings import GatewaySettings, OutboxSettings
from nlu import NluClient
from store.embedded import EmbeddedMongo
from store.mongo import ConversationStore
from store.settings import StoreSettings
from tests.conftest import DEMO_ORDERS
from tests.faults_support import (
    app_query,
    assert_every_inbound_answered,
    assert_stored_once,
    assert_telegram_sent_once_in_order,
    next_frame,
)
from tests.helpers import post_rest, wait_for
from tests.telegram_standin import TOKEN, BotApiStandIn, private_update

APP_SECRET = "store-restart-app-secret"
TELEGRAM_SECRET = "store-restart-telegram-secret"
CHAT = 550031
APP_USER = "app-store-restart"


async def test_the_gateway_rides_out_a_store_restart_without_losing_or_doubling_a_message(
    tmp_path: Path, own_mongo: EmbeddedMongo, nlu: NluClient, standin: BotApiStandIn
) -> None:
    database = f"restart_{uuid.uuid4().hex[:10]}"
    settings = (
        Settings(
            gateway=GatewaySettings(var_dir=tmp_path / "var"),
            store=StoreSettings(mongodb_uri=f"{own_mongo.uri}&serverSelectionTimeoutMS=1000", database=database),
            outbox=OutboxSettings(base_delay=0.05, max_delay=0.5, max_attempts=60, poll_interval=0.05),
            backoffice=BackofficeSettings(sweep_seconds=0.2),
        )
        .with_channel("app", secret=APP_SECRET)
        .with_channel("telegram", bot_token=TOKEN, webhook_secret=TELEGRAM_SECRET, api_base_url=standin.base_url)
    )
    gateway = GatewayBuilder(settings).nlu(nlu).build()
    await gateway.seed_orders(DEMO_ORDERS)
    store = ConversationStore.from_uri(own_mongo.uri, database)  # the test's own view of the data
    telegram_accepted: list[str] = []

    async def telegram(http: TestClient[Any, Any], update_id: int, text: str) -> int:
        update = private_update(update_id, CHAT, text=text)
        response = await http.post(WEBHOOK_PATH, json=update, headers={SECRET_HEADER: TELEGRAM_SECRET})
        if response.status == 200:
            telegram_accepted.append(str(update_id))
        return response.status

    async def rest(http: TestClient[Any, Any], message_id: str, text: str) -> tuple[int, Any]:
        body = {"sender": "rest-store-restart", "message": text, "message_id": message_id}
        response = await post_rest(http, body)
        return response.status, (await response.json(), response.headers.get("Retry-After"))

    try:
        async with (
            TestClient(TestServer(build_app(gateway))) as http,
            http.ws_connect(f"{WS_PATH}?{app_query(APP_SECRET, APP_USER)}") as socket,
        ):
            assert gateway.console is not None and gateway.backoffice is not None
            live = await gateway.console.live.subscribe()
            assert (await rest(http, "r1", "你好"))[0] == 200
            assert await telegram(http, 4001, "你好") == 200
            await socket.send_json({"type": "message", "client_id": "a1", "text": "你好"})
            assert (await next_frame(socket, "ack"))["client_id"] == "a1"

            # A reply is on its way to Telegram when the store goes away: the send succeeds, but
            # the outbox cannot record it until the store is back.
            standin.hang_sends = True
            assert await telegram(http, 4002, "查一下订单202611150001") == 200

            async def reply_in_flight() -> bool:
                return standin.send_attempts > len(standin.sent)

            await wait_for(reply_in_flight, 10)
            await own_mongo.stop()
            standin.release_sends()
            sweeps_before = gateway.backoffice.monitor.completed_sweeps

            down_rest, down_telegram, health = await asyncio.gather(
                rest(http, "r2", "查一下订单202611150001"),
                telegram(http, 4003, "谢谢"),
                http.get("/health"),
            )
            await socket.send_json({"type": "message", "client_id": "a2", "text": "查一下订单202611150001"})
            refused = await next_frame(socket, "ack", "error")  # replies to a1 may come first
            status, (body, retry_after) = down_rest
            assert status == 503 and body["error"]["code"] == "store_unavailable" and retry_after is not None
            assert down_telegram >= 500, "not 2xx: Telegram redelivers the update"
            assert refused["type"] == "error" and refused["error"] == "unavailable", refused
            assert health.status == 503 and (await health.json())["store"] is False

            await own_mongo.start()  # same port, same files; the gateway is not restarted

            # Everyone retries what was not acknowledged.
            status, (replies, _) = await rest(http, "r2", "查一下订单202611150001")
            assert status == 200 and "202611150001" in replies[0]["text"]
            assert await telegram(http, 4003, "谢谢") == 200
            await socket.send_json({"type": "message", "client_id": "a2", "text": "查一下订单202611150001"})
            # The ack and the reply, in either order: a reply is pushed as soon as it is stored.
            frames: list[dict[str, Any]] = []
            while not (
                any(f["type"] == "ack" and f.get("client_id") == "a2" for f in frames)
                and any(f["type"] == "message" and "202611150001" in str(f.get("text")) for f in frames)
            ):
                frames.append(await next_frame(socket, "ack", "message"))

            async def delivered() -> bool:
                await asyncio.sleep(0.02)
                return await store.count_messages(direction="out", delivered=False) == 0

            await wait_for(delivered, 15)

            # The console's live feed reopened: a change made now reaches its subscriber.
            while not live.empty():
                live.get_nowait()
            assert (await rest(http, "r3", "谢谢"))[0] == 200
            seen: list[dict[str, Any]] = []
            while not any(e.get("type") == "message" and e.get("text") == "谢谢" for e in seen):
                seen.append(await asyncio.wait_for(live.get(), 10))

            async def swept_again() -> bool:
                await asyncio.sleep(0.05)
                return gateway.backoffice is not None and gateway.backoffice.monitor.completed_sweeps > sweeps_before

            await wait_for(swept_again, 10)
            health = await http.get("/health")
            assert health.status == 200, await health.text()

        await assert_stored_once(
            store, "rest", ["rest-store-restart:r1", "rest-store-restart:r2", "rest-store-restart:r3"]
        )
        await assert_stored_once(store, "telegram", telegram_accepted)
        assert telegram_accepted == ["4001", "4002", "4003"]
        await assert_stored_once(store, "app", [f"{APP_USER}:a1", f"{APP_USER}:a2"])
        for channel in ("rest", "telegram", "app"):
            await assert_every_inbound_answered(store, channel)
        await assert_telegram_sent_once_in_order(store, standin)
    finally:
        await store.close()  # the whole store is this test's own: nothing to drop


async def test_a_server_selection_timeout_in_the_uri_is_kept() -> None:
    """Operators shorten how long a request waits for a lost store in ``MONGODB_URI``."""
    base = "mongodb://127.0.0.1:9/?directConnection=true"
    configured = ConversationStore.from_uri(f"{base}&serverSelectionTimeoutMS=700")
    default = ConversationStore.from_uri(base)
    try:
        assert configured.client.options.server_selection_timeout == 0.7
        assert default.client.options.server_selection_timeout == 5.0
    finally:
        await configured.close()
        await default.close()
