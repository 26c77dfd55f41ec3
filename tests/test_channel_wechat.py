"""The WeChat channel against its stand-in, on WeChat's wire format: signed XML pushes (plain and
safe mode), redeliveries stored once, images fetched with media/get, replies as 客服消息 with the
access token cached and renewed; end to end through the real gateway and NLU."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from PIL import Image

from gateway import Gateway, GatewayBuilder, Settings, build_app
from gateway.settings import GatewaySettings, OutboxSettings
from nlu import NluClient
from standins.wechat_api import APP_ID, APP_SECRET, ENCODING_AES_KEY, TOKEN, WeChatStandIn
from store.mongo import ConversationStore
from tests.conftest import DEMO_ORDERS

OPENID = "oAbC-customer-0001"
WEBHOOK = "/webhooks/wechat"


@pytest_asyncio.fixture
async def wechat() -> AsyncIterator[WeChatStandIn]:
    server = WeChatStandIn()
    await server.start()
    yield server
    await server.stop()


@pytest_asyncio.fixture
async def served(
    tmp_path: Path, store: ConversationStore, nlu: NluClient, wechat: WeChatStandIn
) -> AsyncIterator[tuple[TestClient[object, object], Gateway]]:
    settings = Settings(
        gateway=GatewaySettings(var_dir=tmp_path / "var"), outbox=OutboxSettings(base_delay=0.05, poll_interval=0.05)
    ).with_channel(
        "wechat", app_id=APP_ID, app_secret=APP_SECRET, token=TOKEN, encoding_aes_key=ENCODING_AES_KEY,
        api_base_url=wechat.base_url,
    )  # fmt: skip
    gateway = GatewayBuilder(settings).store(store).nlu(nlu).build()
    async with TestClient(TestServer(build_app(gateway))) as http:
        await gateway.seed_orders(DEMO_ORDERS)
        yield http, gateway


async def answered(wechat: WeChatStandIn, openid: str, count: int = 1, seconds: float = 20.0) -> list[str]:
    for _ in range(int(seconds / 0.05)):
        if len(wechat.texts_to(openid)) >= count:
            return wechat.texts_to(openid)
        await asyncio.sleep(0.05)
    raise AssertionError(f"no reply to {openid}: {wechat.sent}")


async def test_wechat_checks_the_url_and_refuses_unsigned_pushes(
    served: tuple[TestClient[object, object], Gateway], wechat: WeChatStandIn, store: ConversationStore
) -> None:
    http, _ = served
    echo = await http.get(WEBHOOK, params={**wechat.signed_query(), "echostr": "echo-123"})
    assert echo.status == 200 and await echo.text() == "echo-123"
    forged = await http.get(WEBHOOK, params={**wechat.signed_query(token="not-ours"), "echostr": "x"})
    assert forged.status == 403
    xml = wechat.message_xml(OPENID, text="你好")
    pushed = await wechat.push(str(http.make_url(WEBHOOK)), xml, token="not-ours", attempts=1)
    assert pushed.status == 403
    assert await store.count_messages(direction="in") == 0


async def test_a_message_redelivered_three_times_is_stored_and_answered_once(
    served: tuple[TestClient[object, object], Gateway], wechat: WeChatStandIn, store: ConversationStore
) -> None:
    http, _ = served
    xml = wechat.message_xml(OPENID, text="帮我查一下订单202611150001到哪了", msg_id=24_100_000_001)
    url = str(http.make_url(WEBHOOK))
    for _ in range(3):  # WeChat got no answer in time and tried again (same MsgId)
        pushed = await wechat.push(url, xml, attempts=1)
        assert pushed.status == 200 and pushed.body == "success"
    replies = await answered(wechat, OPENID)
    assert any("202611150001" in r for r in replies)
    assert await store.count_messages(channel="wechat", direction="in") == 1
    await asyncio.sleep(0.3)
    assert len(wechat.texts_to(OPENID)) == await store.count_messages(channel="wechat", direction="out")


async def test_safe_mode_messages_are_decrypted_and_a_forged_one_is_refused(
    served: tuple[TestClient[object, object], Gateway], wechat: WeChatStandIn, store: ConversationStore
) -> None:
    http, _ = served
    url = str(http.make_url(WEBHOOK))
    pushed = await wechat.push(url, wechat.message_xml(OPENID, text="你好"), encrypted=True)
    assert pushed.body == "success" and pushed.deliveries == 1
    assert await answered(wechat, OPENID)
    stored = await store.messages.find_one({"channel": "wechat", "direction": "in"})
    assert stored is not None and stored["text"] == "你好"
    assert await store.conversations.find_one({"channel": "wechat", "sender_id": OPENID}) is not None
    # Encrypted with another account's key: its message signature cannot match.
    other = WeChatStandIn(encoding_aes_key="Z" * 43)
    other.token = wechat.token
    forged = await other.push(url, wechat.message_xml("oIntruder", text="hi"), encrypted=True, attempts=1)
    assert forged.status == 400
    assert await store.messages.find_one({"sender_id": "oIntruder"}) is None


async def test_an_image_is_fetched_into_the_media_store(
    served: tuple[TestClient[object, object], Gateway], wechat: WeChatStandIn, store: ConversationStore
) -> None:
    http, gateway = served
    picture = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(picture, format="JPEG")
    media_id = wechat.upload(picture.getvalue())
    pushed = await wechat.push(str(http.make_url(WEBHOOK)), wechat.message_xml(OPENID, image_media_id=media_id))
    assert pushed.body == "success"
    stored = await store.messages.find_one({"channel": "wechat", "direction": "in"})
    assert stored is not None and len(stored["attachments"]) == 1
    assert stored["attachments"][0]["content_type"] == "image/jpeg"
    assert gateway.media is not None and await gateway.media.describe(stored["attachments"][0]["media_id"])


async def test_the_access_token_is_cached_and_renewed_when_wechat_refuses_it(
    served: tuple[TestClient[object, object], Gateway], wechat: WeChatStandIn
) -> None:
    http, _ = served
    url = str(http.make_url(WEBHOOK))
    await wechat.push(url, wechat.message_xml(OPENID, text="你好"))
    first = await answered(wechat, OPENID)
    assert wechat.tokens_issued == 1  # one token for all the turn's replies
    wechat.revoke_tokens()  # WeChat invalidated it (the secret was reset elsewhere)
    await wechat.push(url, wechat.message_xml(OPENID, text="谢谢"))
    await answered(wechat, OPENID, count=len(first) + 1)
    assert wechat.tokens_issued == 2
