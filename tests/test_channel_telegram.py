"""Telegram: python-telegram-bot against a local Bot API stand-in, through the real gateway."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from telegram import Bot

from channels.base import DeliveryFailed
from channels.telegram import SECRET_HEADER, WEBHOOK_PATH, TelegramInput, TelegramOutput, make_bot
from gateway import GatewayBuilder, Settings, SettingsError, build_app
from gateway.settings import GatewaySettings, OutboxSettings
from nlu import NluClient
from store import InboundMessage, Message, QuickReply
from store.media import MediaStore
from store.mongo import ConversationStore
from store.settings import MediaSettings
from tests.conftest import DEMO_ORDERS
from tests.telegram_standin import TOKEN, BotApiStandIn, callback_update, private_update

SECRET = "s3cret-token_1"
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4
CHAT = 777001


@pytest_asyncio.fixture
async def bot(standin: BotApiStandIn) -> AsyncIterator[Bot]:
    bot = make_bot(TOKEN, standin.base_url)
    yield bot
    await bot.shutdown()


@pytest.fixture
def media(store: ConversationStore, tmp_path: Path) -> MediaStore:
    media = MediaStore(tmp_path / "media", max_bytes=64 * 1024)
    media.use_collection(store.media)
    return media


def storing(store: ConversationStore) -> Callable[[InboundMessage], Awaitable[list[Message]]]:
    """An inbound handler that only persists, for adapter tests that need no dialogue."""

    async def on_message(message: InboundMessage) -> list[Message]:
        await store.accept_inbound(message)
        return []

    return on_message


@pytest_asyncio.fixture
async def webhook(
    bot: Bot, media: MediaStore, store: ConversationStore
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    app = web.Application()
    app.router.add_routes(TelegramInput(bot, media, webhook_secret=SECRET).routes(storing(store)))
    async with TestClient(TestServer(app)) as http:
        yield http


async def post(http: TestClient[web.Request, web.Application], update: object, secret: str | None = SECRET) -> int:
    headers = {SECRET_HEADER: secret} if secret is not None else {}
    response = await http.post(WEBHOOK_PATH, json=update, headers=headers)
    return response.status


async def test_the_secret_token_header_is_required(webhook: TestClient, store: ConversationStore) -> None:
    update = private_update(1, CHAT, text="你好")
    assert await post(webhook, update, secret=None) == 403
    assert await post(webhook, update, secret="wrong") == 403
    assert await store.count_messages() == 0
    assert await post(webhook, update) == 200
    assert await store.count_messages() == 1


async def test_malformed_updates_get_a_400_and_nothing_is_stored(webhook: TestClient, store: ConversationStore) -> None:
    headers = {SECRET_HEADER: SECRET, "Content-Type": "application/json"}
    for body in (b"{not json", b"[1, 2]", b'{"message": {"text": "no update_id"}}'):
        response = await webhook.post(WEBHOOK_PATH, data=body, headers=headers)
        assert response.status == 400, body
        assert "error" in await response.json()
    assert await store.count_messages() == 0


async def test_a_redelivered_update_is_stored_once(webhook: TestClient, store: ConversationStore) -> None:
    update = private_update(42, CHAT, text="我的快递到哪了")
    assert [await post(webhook, update) for _ in range(3)] == [200, 200, 200]
    assert await store.count_messages(channel="telegram", channel_message_id="42") == 1


async def test_group_chats_are_acknowledged_but_not_served(webhook: TestClient, store: ConversationStore) -> None:
    update = private_update(5, -100123, text="大家好")
    update["message"]["chat"] = {"id": -100123, "type": "group", "title": "买家群"}
    response = await webhook.post(WEBHOOK_PATH, json=update, headers={SECRET_HEADER: SECRET})
    assert response.status == 200 and "ignored" in await response.json()
    assert await store.count_messages() == 0


async def test_a_photo_is_fetched_with_get_file_into_the_media_store(
    webhook: TestClient, standin: BotApiStandIn, store: ConversationStore, media: MediaStore
) -> None:
    standin.add_file("ph-big", JPEG)
    photo = [
        {"file_id": "ph-small", "file_unique_id": "s", "width": 90, "height": 90},
        {"file_id": "ph-big", "file_unique_id": "b", "width": 800, "height": 600, "file_size": len(JPEG)},
    ]
    assert await post(webhook, private_update(7, CHAT, photo=photo, caption="包装破损")) == 200
    [stored] = await store.history((await store.messages.find_one({}) or {})["conversation_id"])
    assert stored.text == "包装破损"
    [attachment] = stored.attachments
    assert attachment.kind == "image" and attachment.content_type == "image/jpeg" and attachment.size == len(JPEG)
    assert attachment.media_id is not None
    assert await media.read(attachment.media_id) == JPEG
    assert "getFile" in standin.calls


async def test_an_oversized_photo_is_refused_but_the_message_is_kept(
    webhook: TestClient, standin: BotApiStandIn, store: ConversationStore, tmp_path: Path
) -> None:
    standin.add_file("huge", b"\xff\xd8\xff" + b"\x00" * 70 * 1024)
    photo = [{"file_id": "huge", "file_unique_id": "h", "width": 4000, "height": 3000}]
    assert await post(webhook, private_update(8, CHAT, photo=photo, caption="看图")) == 200
    doc = await store.messages.find_one({"channel_message_id": "8"})
    assert doc is not None and doc["attachments"] == []
    assert doc["metadata"]["rejected_attachments"][0]["reason"] == "too_large"
    assert [p for p in (tmp_path / "media").rglob("*") if p.is_file()] == []


async def test_sharing_ones_own_contact_links_the_phone_to_the_customer(
    webhook: TestClient, store: ConversationStore
) -> None:
    own = {"phone_number": "+86 138 0013 8000", "first_name": "伟", "user_id": CHAT}
    assert await post(webhook, private_update(9, CHAT, contact=own)) == 200
    someone_else = {"phone_number": "+8613900139000", "first_name": "李", "user_id": 5}
    assert await post(webhook, private_update(10, CHAT, contact=someone_else)) == 200
    customer = await store.resolve_customer("telegram", str(CHAT), {})
    assert customer.identities["phone"] == "13800138000"
    assert await store.count_messages(channel="telegram") == 2


async def test_replies_go_out_with_an_inline_keyboard_and_errors_are_classified(
    bot: Bot, standin: BotApiStandIn
) -> None:
    sender = TelegramOutput(bot)
    reply = Message(
        id="m1",
        conversation_id="c1",
        customer_id="u1",
        channel="telegram",
        direction="out",
        text="请选择订单",
        quick_replies=[
            QuickReply(title="订单 202611150001", payload="202611150001"),
            QuickReply(title="x", payload="长" * 40),
        ],
        recipient_id=str(CHAT),
        created_at="2026-11-22T00:00:00Z",
    )
    assert await sender.send(reply) is not None
    [sent] = standin.sent
    assert sent["chat_id"] == str(CHAT) and sent["text"] == "请选择订单"
    buttons = [row[0] for row in sent["reply_markup"]["inline_keyboard"]]
    assert buttons == [
        {"text": "订单 202611150001", "callback_data": "202611150001"},
        {"text": "x", "callback_data": "x"},  # a payload over 64 bytes falls back to the title
    ]

    with pytest.raises(DeliveryFailed) as unknown_chat:
        await sender.send(reply.model_copy(update={"recipient_id": "404"}))
    assert unknown_chat.value.permanent

    await standin.stop()
    with pytest.raises(DeliveryFailed) as down:
        await sender.send(reply)
    assert not down.value.permanent


async def test_polling_mode_reads_get_updates(bot: Bot, media: MediaStore, standin: BotApiStandIn, store) -> None:
    standin.updates = [private_update(100, CHAT, text="轮询一"), callback_update(101, CHAT, "202611150001")]
    channel = TelegramInput(bot, media, webhook_secret=None, polling=True, poll_timeout=1)
    assert channel.routes(storing(store)) == []
    assert channel.receives_exclusively()
    await channel.start(storing(store))
    await channel.start_exclusive(storing(store))  # the gateway does this in the lease holder
    try:
        for _ in range(200):
            if await store.count_messages(channel="telegram") == 2:
                break
            await asyncio.sleep(0.02)
    finally:
        await channel.stop()
    texts = sorted([m["text"] async for m in store.messages.find({"channel": "telegram"})])
    assert texts == ["202611150001", "轮询一"]
    assert "deleteWebhook" in standin.calls and "answerCallbackQuery" in standin.calls


# -- end to end: the real gateway, the real Rasa server, replies through the outbox ----------


def telegram_gateway(settings: Settings, store: ConversationStore, nlu: NluClient, base_url: str):
    bot = make_bot(TOKEN, base_url)
    media = MediaStore(settings.media_root, max_bytes=settings.media.max_bytes)
    return (
        GatewayBuilder(settings)
        .store(store)
        .nlu(nlu)
        .media(media)
        .channels(TelegramInput(bot, media, webhook_secret=SECRET))
        .senders(TelegramOutput(bot))
        .build()
    )


async def all_replies_sent(store: ConversationStore) -> bool:
    """The turn's replies are in the outbox and all of them went out (a turn may give several)."""
    return await store.count_messages(direction="out") > 0 and (
        await store.count_messages(direction="out", delivered=False) == 0
    )


async def wait_for(condition: Callable[[], Awaitable[bool]], seconds: float = 30.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if await condition():
            return
    raise AssertionError("condition not met in time")


async def test_a_conversation_through_the_gateway_survives_an_outage_and_a_restart(
    tmp_path: Path, store: ConversationStore, nlu: NluClient, standin: BotApiStandIn
) -> None:
    settings = Settings(
        gateway=GatewaySettings(var_dir=tmp_path / "var"), outbox=OutboxSettings(base_delay=0.05, poll_interval=0.05)
    )

    async def sent_texts() -> list[str]:
        return [s["text"] for s in standin.sent]

    gateway = telegram_gateway(settings, store, nlu, standin.base_url)
    await gateway.seed_orders(DEMO_ORDERS)
    async with TestClient(TestServer(build_app(gateway))) as http:
        update = private_update(5001, CHAT, text="帮我查一下订单202611150001到哪了")
        assert await post(http, update) == 200
        assert await post(http, update) == 200  # Telegram retried: stored and answered once

        async def answered() -> bool:
            await asyncio.sleep(0.02)
            return await all_replies_sent(store)

        await wait_for(answered)
        assert any("202611150001" in t for t in await sent_texts())
        assert len(standin.sent) == await store.count_messages(direction="out")
        assert await store.count_messages(channel="telegram", direction="in") == 1

        # Telegram's API goes away; the customer's next message is still taken and answered later.
        await standin.stop()
        assert await post(http, private_update(5002, CHAT, text="我要转人工")) == 200

        async def failed_once() -> bool:
            await asyncio.sleep(0.02)
            return await store.messages.count_documents({"direction": "out", "attempts": {"$gte": 1}}) > 0

        await wait_for(failed_once)
    assert await store.count_messages(direction="out", delivered=False) > 0  # the gateway stopped with them unsent

    before = len(standin.sent)
    await standin.start()  # same port
    restarted = telegram_gateway(settings, store, nlu, standin.base_url)
    async with TestClient(TestServer(build_app(restarted))):

        async def all_delivered() -> bool:
            await asyncio.sleep(0.02)
            return await store.count_messages(direction="out", delivered=False) == 0

        await wait_for(all_delivered)
    assert len(standin.sent) > before
    assert await store.count_messages(channel="telegram", direction="in") == 2


def test_telegram_is_enabled_only_when_configured_and_never_without_a_secret() -> None:
    plain = GatewayBuilder(Settings.from_env({})).build()
    assert [c.name for c in plain.channels] == ["rest"] and plain.senders == []

    with pytest.raises(SettingsError, match="TELEGRAM_WEBHOOK_SECRET"):
        GatewayBuilder(Settings.from_env({"TELEGRAM_BOT_TOKEN": TOKEN})).build()

    env = {"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_WEBHOOK_SECRET": SECRET}
    configured = GatewayBuilder(Settings.from_env(env)).build()
    assert [c.name for c in configured.channels] == ["rest", "telegram"]
    assert [s.name for s in configured.senders] == ["telegram"]
    polling = GatewayBuilder(Settings.from_env({"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_MODE": "polling"})).build()
    assert [c.name for c in polling.channels] == ["rest", "telegram"]


async def test_the_customer_is_told_when_a_photo_is_refused(
    tmp_path: Path, store: ConversationStore, nlu: NluClient, standin: BotApiStandIn
) -> None:
    settings = Settings(
        gateway=GatewaySettings(var_dir=tmp_path / "var"),
        media=MediaSettings(max_bytes=1024),
        outbox=OutboxSettings(poll_interval=0.05),
    )
    standin.add_file("big", b"\xff\xd8\xff" + b"\x00" * 4096)
    photo = [{"file_id": "big", "file_unique_id": "b", "width": 4000, "height": 3000}]
    gateway = telegram_gateway(settings, store, nlu, standin.base_url)
    async with TestClient(TestServer(build_app(gateway))) as http:
        update = private_update(6001, CHAT, photo=photo)
        assert await post(http, update) == 200
        assert await post(http, update) == 200

        async def told() -> bool:
            await asyncio.sleep(0.02)
            return any("无法接收" in s["text"] for s in standin.sent)

        await wait_for(told)
    assert sum("无法接收" in s["text"] for s in standin.sent) == 1
    assert [p for p in (tmp_path / "var" / "media").rglob("*") if p.is_file()] == []


async def test_a_message_taken_before_a_crash_is_answered_after_the_restart(
    tmp_path: Path, store: ConversationStore, nlu: NluClient, standin: BotApiStandIn
) -> None:
    # The gateway stored this update (Telegram got its 200), then died before the turn ran.
    await store.accept_inbound(
        InboundMessage(
            channel="telegram", sender_id=str(CHAT), channel_message_id="7001", text="查一下订单202611150001"
        )
    )
    settings = Settings(gateway=GatewaySettings(var_dir=tmp_path / "var"), outbox=OutboxSettings(poll_interval=0.05))
    gateway = telegram_gateway(settings, store, nlu, standin.base_url)
    await gateway.seed_orders(DEMO_ORDERS)
    async with TestClient(TestServer(build_app(gateway))):

        async def answered() -> bool:
            await asyncio.sleep(0.02)
            return await all_replies_sent(store)

        await wait_for(answered)
    assert any("202611150001" in s["text"] for s in standin.sent)
    assert all(s["chat_id"] == str(CHAT) for s in standin.sent)
    assert len(standin.sent) == await store.count_messages(direction="out")
