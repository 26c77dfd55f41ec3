"""App IM: the websocket protocol, uploads, resume after reconnect, through the real gateway."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from channels.app_im import (
    CHAT_PAGE_PATH,
    UPLOAD_PATH,
    WS_PATH,
    AppImInput,
    AppImOutput,
    Connections,
    sign_user,
)
from gateway import GatewayBuilder, Settings, build_app
from gateway.settings import GatewaySettings, OutboxSettings
from nlu import NluClient
from store import InboundMessage, Message, OutboundMessage
from store.media import MediaStore
from store.mongo import ConversationStore
from tests.conftest import DEMO_ORDERS

SECRET = "app-im-test-secret"
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256))


def auth(user: str, secret: str = SECRET, expires: int | None = None) -> str:
    expires = expires if expires is not None else int(time.time()) + 3600
    return f"user={user}&expires={expires}&token={sign_user(secret, user, expires)}"


def storing(store: ConversationStore) -> Callable[[InboundMessage], Awaitable[list[Message]]]:
    async def on_message(message: InboundMessage) -> list[Message]:
        await store.accept_inbound(message)
        return []

    return on_message


@pytest_asyncio.fixture
async def app_client(
    store: ConversationStore, tmp_path: Path
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    media = MediaStore(tmp_path / "media", max_bytes=2048)
    media.use_collection(store.media)
    channel = AppImInput(SECRET, Connections(), media, store)
    app = web.Application()
    app.router.add_routes(channel.routes(storing(store)))
    async with TestClient(TestServer(app)) as http:
        yield http


async def next_frame(socket: Any, kind: str | None = None) -> dict[str, Any]:
    while True:
        frame = json.loads((await socket.receive(timeout=30)).data)
        if kind is None or frame["type"] == kind:
            return frame


async def test_a_missing_wrong_or_expired_token_gets_401(app_client: TestClient) -> None:
    for query in (
        "",
        auth("u1", secret="other"),
        auth("u1", expires=int(time.time()) - 1),
        "user=u1&expires=x&token=y",
    ):
        response = await app_client.get(f"{WS_PATH}?{query}")
        assert response.status == 401, query
        assert (await app_client.post(f"{UPLOAD_PATH}?{query}", data=JPEG)).status == 401


async def test_a_resent_client_id_is_stored_once(app_client: TestClient, store: ConversationStore) -> None:
    async with app_client.ws_connect(f"{WS_PATH}?{auth('u1')}") as socket:
        frame = {"type": "message", "client_id": "c-1", "text": "我的退款到哪了"}
        for _ in range(3):
            await socket.send_json(frame)
            assert (await next_frame(socket))["type"] == "ack"
    assert await store.count_messages(channel="app", channel_message_id="u1:c-1") == 1


async def test_bad_frames_get_an_error_and_the_connection_stays(
    app_client: TestClient, store: ConversationStore
) -> None:
    async with app_client.ws_connect(f"{WS_PATH}?{auth('u1')}") as socket:
        for bad, code in (
            ("{nope", "invalid_json"),
            ("[1]", "invalid_frame"),
            ('{"type": "shout"}', "invalid_frame"),
            ('{"type": "message", "text": "no id"}', "invalid_field"),
            ('{"type": "message", "client_id": "c", "text": "  "}', "empty_message"),
            (
                '{"type": "message", "client_id": "c", "text": "x", "attachments": [{"media_id": "nope"}]}',
                "unknown_media",
            ),
        ):
            await socket.send_str(bad)
            assert (await next_frame(socket))["error"] == code, bad
        await socket.send_json({"type": "typing"})
        await socket.send_json({"type": "message", "client_id": "ok", "text": "好的"})
        assert (await next_frame(socket))["type"] == "ack"
    assert await store.count_messages(channel="app") == 1


async def test_an_upload_is_referenced_by_a_later_message(app_client: TestClient, store: ConversationStore) -> None:
    response = await app_client.post(
        f"{UPLOAD_PATH}?{auth('u1')}&filename=damage.jpg", data=JPEG, headers={"Content-Type": "image/jpeg"}
    )
    assert response.status == 200
    upload = await response.json()
    assert upload["kind"] == "image" and upload["size"] == len(JPEG)

    too_big = await app_client.post(
        f"{UPLOAD_PATH}?{auth('u1')}", data=JPEG * 20, headers={"Content-Type": "image/jpeg"}
    )
    assert too_big.status == 413
    wrong_type = await app_client.post(f"{UPLOAD_PATH}?{auth('u1')}", data=b"MZ...", headers={"Content-Type": "x/exe"})
    assert wrong_type.status == 415

    async with app_client.ws_connect(f"{WS_PATH}?{auth('u1')}") as socket:
        await socket.send_json(
            {"type": "message", "client_id": "p1", "text": "", "attachments": [{"media_id": upload["media_id"]}]}
        )
        assert (await next_frame(socket))["type"] == "ack"
    doc = await store.messages.find_one({"channel_message_id": "u1:p1"})
    assert doc is not None and doc["attachments"][0]["media_id"] == upload["media_id"]
    assert doc["attachments"][0]["filename"] == "damage.jpg"


async def test_the_chat_page_is_served(app_client: TestClient) -> None:
    response = await app_client.get(CHAT_PAGE_PATH)
    assert response.status == 200 and response.content_type == "text/html"
    assert "/webhooks/app/ws" in await response.text()


async def test_the_app_is_enabled_only_when_configured() -> None:
    gateway = GatewayBuilder(Settings.from_env({"APP_IM_SECRET": SECRET})).build()
    assert [c.name for c in gateway.channels] == ["rest", "app"]
    assert [s.name for s in gateway.senders] == ["app"]


# -- end to end ---------------------------------------------------------------------------


async def test_replies_are_pushed_and_missed_ones_replayed_on_reconnect(
    tmp_path: Path, store: ConversationStore, nlu: NluClient
) -> None:
    settings = Settings(
        gateway=GatewaySettings(var_dir=tmp_path / "var"), outbox=OutboxSettings(poll_interval=0.05)
    ).with_channel("app", secret=SECRET)
    gateway = GatewayBuilder(settings).store(store).nlu(nlu).build()
    await gateway.seed_orders(DEMO_ORDERS)
    assert isinstance(gateway.senders[0], AppImOutput)
    async with TestClient(TestServer(build_app(gateway))) as http:
        async with http.ws_connect(f"{WS_PATH}?{auth('app-42')}") as socket:
            await socket.send_json({"type": "message", "client_id": "m1", "text": "帮我查一下订单202611150001到哪了"})
            frames = [await next_frame(socket)]
            while frames[-1]["type"] != "ack":  # replies may overtake the ack
                frames.append(await next_frame(socket))
            assert frames[-1]["client_id"] == "m1"
            reply = next((f for f in frames if f["type"] == "message"), None) or await next_frame(socket, "message")
            assert reply["direction"] == "out" and "202611150001" in reply["text"]
            await socket.send_json({"type": "read", "message_id": reply["id"]})
            await asyncio.sleep(0.1)
        stored = await store.get_message(reply["id"])
        assert stored is not None and stored.delivered and stored.read

        # While the app is closed an agent's message arrives: it waits, it does not fail.
        [conversation] = [c async for c in store.conversations.find({"channel": "app"})]
        pushed = await store.record_outbound(
            OutboundMessage(
                channel="app",
                recipient_id="app-42",
                conversation_id=conversation["_id"],
                text="您好，我是客服小王。",
                author="agent:wang",
            ),
            customer_id=conversation["customer_id"],
            sequence=0,
        )
        assert gateway.outbox is not None
        gateway.outbox.wake("app")
        await asyncio.sleep(0.3)
        waiting = await store.get_message(pushed.id)
        assert waiting is not None and not waiting.delivered and not waiting.failed and waiting.attempts == 0

        async with http.ws_connect(f"{WS_PATH}?{auth('app-42')}") as socket:
            await socket.send_json({"type": "resume", "after": reply["id"]})
            replayed = [await next_frame(socket, "message")]
            while replayed[-1]["id"] != pushed.id:  # the rest of that turn's replies come first
                replayed.append(await next_frame(socket, "message"))
            assert replayed[-1]["text"] == "您好，我是客服小王。"
            assert [f["id"] for f in replayed] == sorted(f["id"] for f in replayed)
        delivered = await store.get_message(pushed.id)
        assert delivered is not None and delivered.delivered
    assert await store.count_messages(channel="app", direction="in") == 1


@pytest.mark.parametrize("after", [None])
async def test_resume_without_an_id_replays_recent_history(app_client: TestClient, after: None) -> None:
    async with app_client.ws_connect(f"{WS_PATH}?{auth('u9')}") as socket:
        await socket.send_json({"type": "message", "client_id": "h1", "text": "第一条"})
        await next_frame(socket, "ack")
        await socket.send_json({"type": "resume", "after": after})
        frame = await next_frame(socket, "message")
        assert frame["text"] == "第一条" and frame["direction"] == "in"


async def test_a_message_the_gateway_cannot_take_gets_an_error_and_can_be_resent(
    store: ConversationStore, tmp_path: Path
) -> None:
    failures = [RuntimeError("store down")]

    async def flaky(message: InboundMessage) -> list[Message]:
        if failures:
            raise failures.pop()
        await store.accept_inbound(message)
        return []

    app = web.Application()
    app.router.add_routes(AppImInput(SECRET, Connections(), MediaStore(tmp_path), store).routes(flaky))
    async with TestClient(TestServer(app)) as http, http.ws_connect(f"{WS_PATH}?{auth('u1')}") as socket:
        frame = {"type": "message", "client_id": "r1", "text": "在吗"}
        await socket.send_json(frame)
        assert (await next_frame(socket))["error"] == "unavailable"
        await socket.send_json(frame)
        assert (await next_frame(socket))["type"] == "ack"
    assert await store.count_messages(channel="app") == 1
