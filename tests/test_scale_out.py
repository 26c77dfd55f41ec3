"""Two real gateway processes (``run.py serve``) on one store: a reply reaches the customer's
socket whichever process wrote it, a conversation written to both processes at once is answered
in order and once, and a process killed mid-turn loses nothing: the other one finishes the turn
and sends the reply, once. The store is an nx-27017 server of the test's own; the NLU is the
session's Rasa server (for one process, behind a proxy that makes its turns slow)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest_asyncio
from aiohttp import web

from channels.app_im import WS_PATH, sign_user
from channels.telegram import SECRET_HEADER, WEBHOOK_PATH
from gateway.cluster import GatewayProcess
from nlu.server import EmbeddedRasaServer
from store.embedded import EmbeddedMongo
from store.mongo import ConversationStore
from supervisor import free_port
from tests.helpers import LoopbackServer
from tests.processes import eventually, serve_process
from tests.telegram_standin import TOKEN, BotApiStandIn, private_update

SECRET = "scale-out-secret"
APP_SECRET = "scale-out-app-secret"
AGENT_TOKEN = "scale-out-agent-token"
ORDERS = ("202611150001", "202611180002", "202611020003", "202611100005")


class SlowRasa(LoopbackServer):
    """Forwards to the real Rasa server after a pause: a process whose turns take a while."""

    def __init__(self, target: str, delay: float) -> None:
        super().__init__()
        self.target, self.delay = target, delay

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{path:.*}", self._forward)

    async def _forward(self, request: web.Request) -> web.Response:
        if request.path == "/model/parse":
            await asyncio.sleep(self.delay)
        async with (
            aiohttp.ClientSession() as http,
            http.request(
                request.method,
                self.target + request.path_qs,
                data=await request.read(),
                headers={"Content-Type": request.headers.get("Content-Type", "application/json")},
            ) as response,
        ):
            return web.Response(body=await response.read(), status=response.status, content_type="application/json")


@pytest_asyncio.fixture
async def cluster(
    own_mongo: EmbeddedMongo, rasa: EmbeddedRasaServer, standin: BotApiStandIn, tmp_path: Path
) -> AsyncIterator[tuple[list[GatewayProcess], ConversationStore]]:
    database = f"scale_{uuid.uuid4().hex[:10]}"
    base = {
        **os.environ,
        "MONGODB_URI": own_mongo.uri,
        "MONGODB_DATABASE": database,
        "RASA_URL": rasa.url,
        "RASA_TOKEN": rasa.token,
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "TELEGRAM_API_BASE_URL": standin.base_url,
        "APP_IM_SECRET": APP_SECRET,
        "AGENT_API_TOKEN": AGENT_TOKEN,
        "MEDIA_DIR": str(tmp_path / "media"),  # shared, as a deployment shares it
        "OUTBOX_POLL_SECONDS": "0.2",
        "OUTBOX_BASE_DELAY_SECONDS": "0.1",
        "OUTBOX_LEASE_SECONDS": "2",
        "RECOVERY_SECONDS": "1",
        "RECOVERY_AFTER_SECONDS": "2",
        "BACKOFFICE_SWEEP_SECONDS": "0",
    }
    processes = []
    for name in ("a", "b"):
        port = free_port()
        env = {**base, "GATEWAY_PORT": str(port), "GATEWAY_VAR_DIR": str(tmp_path / f"var-{name}")}
        processes.append(serve_process(env, port, tmp_path / f"gateway-{name}.log"))
    store = ConversationStore.from_uri(own_mongo.uri, database)
    try:
        await asyncio.gather(*(p.start() for p in processes))
        yield processes, store
    finally:
        for process in processes:
            await process.stop()
        await store.client.drop_database(database)
        await store.close()


def app_query(user: str) -> str:
    expires = int(time.time()) + 3600
    return f"user={user}&expires={expires}&token={sign_user(APP_SECRET, user, expires)}"


async def next_message(socket: aiohttp.ClientWebSocketResponse, timeout: float = 20.0) -> dict[str, Any]:
    """The next message frame (acks skipped)."""
    while True:
        frame = json.loads((await socket.receive(timeout=timeout)).data)
        if frame.get("type") == "message":
            return frame


async def assert_each_reply_once(store: ConversationStore, standin: BotApiStandIn) -> None:
    replies = await store.count_messages(channel="telegram", direction="out")
    assert replies > 0
    assert len(standin.sent) == replies, f"{len(standin.sent)} sent for {replies} stored replies"
    stored = [m async for m in store.messages.find({"channel": "telegram", "direction": "out"})]
    assert all(m.get("delivered") for m in stored)


async def test_a_reply_reaches_the_socket_whichever_process_wrote_it(
    cluster: tuple[list[GatewayProcess], ConversationStore],
) -> None:
    (a, b), store = cluster
    user = f"app-{uuid.uuid4().hex[:6]}"
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{a.url}{WS_PATH}?{app_query(user)}") as phone,  # the app, on process A
        http.ws_connect(f"{b.url}{WS_PATH}?{app_query(user)}") as widget,  # the web widget, on B
    ):
        await phone.send_json({"type": "message", "client_id": "m1", "text": f"查一下订单{ORDERS[0]}"})
        on_phone, on_widget = await next_message(phone), await next_message(widget)
        assert on_phone["id"] == on_widget["id"] and ORDERS[0] in on_phone["text"]

        await phone.send_json({"type": "message", "client_id": "m2", "text": "转人工"})
        await next_message(phone)
        conversation = await store.conversations.find_one({"open_key": f"app:{user}"})
        assert conversation is not None
        await eventually(lambda: _state_is(store, conversation["_id"], "waiting_agent"), 20)
        # An agent answers through process B's API; the customer's phone is on process A.
        route = f"{b.url}/api/agent/conversations/{conversation['_id']}"
        headers = {"Authorization": f"Bearer {AGENT_TOKEN}"}
        async with http.post(f"{route}/claim", json={"agent": "agent-1"}, headers=headers) as response:
            assert response.status == 200, await response.text()
        body = {"agent": "agent-1", "text": "您好，我是客服小李", "client_message_id": "r1"}
        async with http.post(f"{route}/messages", json=body, headers=headers) as response:
            assert response.status == 201, await response.text()
            agent_reply = (await response.json())["message"]
        seen: list[dict[str, Any]] = []
        while not any(f["id"] == agent_reply["id"] for f in seen):
            seen.append(await next_message(phone))
        assert [f["text"] for f in seen if f["id"] == agent_reply["id"]] == ["您好，我是客服小李"]
        # Nothing reached the phone twice (pushed on storing, found again by a catch-up pass).
        more: list[str] = []
        try:
            while True:
                more.append((await next_message(phone, timeout=1.5))["id"])
        except TimeoutError:
            pass
        assert agent_reply["id"] not in more


async def _state_is(store: ConversationStore, conversation_id: str, state: str) -> bool:
    conversation = await store.get_conversation(conversation_id)
    return conversation is not None and conversation.state.value == state


async def test_messages_written_to_both_processes_are_answered_in_order_and_once(
    cluster: tuple[list[GatewayProcess], ConversationStore], standin: BotApiStandIn
) -> None:
    (a, b), store = cluster
    chat = 770000 + int(uuid.uuid4().int % 9999)
    updates = [private_update(9100 + i, chat, text=f"查一下订单{order}") for i, order in enumerate(ORDERS)]
    async with aiohttp.ClientSession() as http:

        async def post(process: GatewayProcess, update: dict[str, Any]) -> int:
            async with http.post(process.url + WEBHOOK_PATH, json=update, headers={SECRET_HEADER: SECRET}) as r:
                return r.status

        # Each update a few milliseconds after the previous, alternating processes.
        tasks = []
        for i, update in enumerate(updates):
            tasks.append(asyncio.create_task(post((a, b)[i % 2], update)))
            await asyncio.sleep(0.005)
        assert await asyncio.gather(*tasks) == [200] * len(updates)

    async def all_sent() -> bool:
        return await store.count_messages(channel="telegram", direction="out", delivered=False) == 0 and bool(
            standin.sent
        )

    await eventually(all_sent, 30)
    await asyncio.sleep(0.5)
    assert await store.count_messages(channel="telegram", direction="in") == len(ORDERS)
    await assert_each_reply_once(store, standin)
    # In the order the messages were stored: each order's reply before the next order's.
    stored_order = [
        m["text"][-12:] async for m in store.messages.find({"channel": "telegram", "direction": "in"}).sort("_id", 1)
    ]
    answered = [
        next(o for o in ORDERS if o in sent["text"]) for sent in standin.sent if any(o in sent["text"] for o in ORDERS)
    ]
    assert list(dict.fromkeys(answered)) == stored_order


async def test_a_process_killed_mid_turn_loses_nothing(
    cluster: tuple[list[GatewayProcess], ConversationStore],
    rasa: EmbeddedRasaServer,
    standin: BotApiStandIn,
    tmp_path: Path,
) -> None:
    (a, b), store = cluster
    # Process A restarted behind a slow NLU, so that it is killed in the middle of a turn.
    slow = SlowRasa(rasa.url, delay=30)
    await slow.start()
    try:
        await a.stop()
        a.env = {**a.env, "RASA_URL": slow.base_url}
        await a.start()
        chat = 660000 + int(uuid.uuid4().int % 9999)
        update = private_update(9300, chat, text=f"查一下订单{ORDERS[1]}")
        headers = {SECRET_HEADER: SECRET}
        async with aiohttp.ClientSession() as http:
            in_flight = asyncio.create_task(http.post(a.url + WEBHOOK_PATH, json=update, headers=headers))

            async def stored() -> bool:
                return await store.count_messages(channel="telegram", direction="in") == 1

            await eventually(stored, 10)
            await asyncio.sleep(0.5)  # A is waiting on the NLU now
            await a.kill()
            with contextlib.suppress(aiohttp.ClientError):
                await in_flight  # Telegram got no answer: it will retry

            async def answered() -> bool:
                return bool(standin.sent) and (
                    await store.count_messages(channel="telegram", direction="out", delivered=False) == 0
                )

            await eventually(answered, 30)  # B's recovery pass took the turn over
            assert ORDERS[1] in standin.sent[0]["text"]
            # Telegram's retry reaches B: the message is not stored or answered again.
            async with http.post(b.url + WEBHOOK_PATH, json=update, headers=headers) as response:
                assert response.status == 200
        await asyncio.sleep(1.0)
        assert await store.count_messages(channel="telegram", direction="in") == 1
        await assert_each_reply_once(store, standin)
    finally:
        await slow.stop()
