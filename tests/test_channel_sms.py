"""SMS: Twilio's signed webhook in, twilio's REST client out to a loopback stand-in."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from twilio.request_validator import RequestValidator

from channels.base import DeliveryFailed, text_with_choices
from channels.sms import WEBHOOK_PATH, TwilioSmsInput, TwilioSmsOutput
from gateway import GatewayBuilder, Settings, SettingsError, build_app
from gateway.settings import GatewaySettings, OutboxSettings
from nlu import NluClient
from store import InboundMessage, Message, QuickReply
from store.mongo import ConversationStore
from tests.conftest import DEMO_ORDERS
from tests.helpers import wait_for
from tests.twilio_standin import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, INVALID_NUMBER, TwilioStandIn
from twiliohooks import SIGNATURE_HEADER

PUBLIC = "https://cs.example.com"
CUSTOMER = "+8613800138000"


@pytest_asyncio.fixture
async def standin() -> AsyncIterator[TwilioStandIn]:
    server = TwilioStandIn()
    await server.start()
    yield server
    await server.stop()


def storing(store: ConversationStore) -> Callable[[InboundMessage], Awaitable[list[Message]]]:
    async def on_message(message: InboundMessage) -> list[Message]:
        await store.accept_inbound(message)
        return []

    return on_message


def sms(sid: str, body: str, sender: str = CUSTOMER, **extra: str) -> dict[str, str]:
    return {
        "MessageSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": sender,
        "To": FROM_NUMBER,
        "Body": body,
        "NumMedia": "0",
        **extra,
    }


def signed(url: str, form: dict[str, str], token: str = AUTH_TOKEN) -> dict[str, str]:
    """The header Twilio would send: the signature covers the public URL and the form."""
    return {SIGNATURE_HEADER: RequestValidator(token).compute_signature(url, form)}


@pytest_asyncio.fixture
async def webhook(store: ConversationStore) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    app = web.Application()
    app.router.add_routes(TwilioSmsInput(AUTH_TOKEN, ACCOUNT_SID, public_base_url=PUBLIC).routes(storing(store)))
    async with TestClient(TestServer(app)) as http:
        yield http


async def test_a_wrong_signature_is_refused_with_403(webhook: TestClient, store: ConversationStore) -> None:
    form = sms("SM1", "你好")
    url = PUBLIC + WEBHOOK_PATH
    for headers in ({}, signed(url, form, token="not-the-token"), signed("http://127.0.0.1" + WEBHOOK_PATH, form)):
        response = await webhook.post(WEBHOOK_PATH, data=form, headers=headers)
        assert response.status == 403
    tampered = {**form, "Body": "改过的"}
    assert (await webhook.post(WEBHOOK_PATH, data=tampered, headers=signed(url, form))).status == 403
    assert await store.count_messages() == 0

    response = await webhook.post(WEBHOOK_PATH, data=form, headers=signed(url, form))
    assert response.status == 200 and response.content_type == "text/xml"
    assert "<Response>" in await response.text()
    assert await store.count_messages(channel="sms") == 1


async def test_behind_a_proxy_the_url_is_rebuilt_from_forwarded_headers(store: ConversationStore) -> None:
    app = web.Application()
    app.router.add_routes(TwilioSmsInput(AUTH_TOKEN, ACCOUNT_SID).routes(storing(store)))
    async with TestClient(TestServer(app)) as http:
        form = sms("SM-proxy", "查订单")
        outside = "https://sms.shop.example" + WEBHOOK_PATH + "?tenant=cn"
        headers = {**signed(outside, form), "X-Forwarded-Proto": "https", "X-Forwarded-Host": "sms.shop.example"}
        response = await http.post(WEBHOOK_PATH + "?tenant=cn", data=form, headers=headers)
        assert response.status == 200
    assert await store.count_messages(channel="sms") == 1


async def test_a_retried_message_sid_is_stored_once(webhook: TestClient, store: ConversationStore) -> None:
    form = sms("SM-retry", "我的退款什么时候到")
    headers = signed(PUBLIC + WEBHOOK_PATH, form)
    assert [(await webhook.post(WEBHOOK_PATH, data=form, headers=headers)).status for _ in range(3)] == [200] * 3
    assert await store.count_messages(channel="sms", channel_message_id="SM-retry") == 1
    customer = await store.resolve_customer("sms", CUSTOMER, {})
    assert customer.identities["phone"] == "13800138000", "the SMS number links to the shop's customer"


async def test_bad_payloads_get_a_400_and_nothing_is_stored(webhook: TestClient, store: ConversationStore) -> None:
    for form in (
        {k: v for k, v in sms("SM-x", "hi").items() if k != "MessageSid"},
        sms("SM-y", "   "),
        sms("SM-z", "hi", AccountSid="AC" + "9" * 32),
        sms("SM-w", "hi", NumMedia="lots"),
    ):
        response = await webhook.post(WEBHOOK_PATH, data=form, headers=signed(PUBLIC + WEBHOOK_PATH, form))
        assert response.status == 400, form
        assert "error" in await response.json()
    assert await store.count_messages() == 0


async def test_mms_media_links_are_kept(webhook: TestClient, store: ConversationStore) -> None:
    form = sms("SM-mms", "", NumMedia="1", MediaUrl0="https://api.twilio.com/m/ME1", MediaContentType0="image/jpeg")
    assert (await webhook.post(WEBHOOK_PATH, data=form, headers=signed(PUBLIC + WEBHOOK_PATH, form))).status == 200
    doc = await store.messages.find_one({"channel_message_id": "SM-mms"})
    assert doc is not None and doc["attachments"][0]["url"].endswith("/ME1")


def reply(text: str, to: str = CUSTOMER, **extra: object) -> Message:
    return Message.model_validate(
        {
            "id": "m1",
            "conversation_id": "c1",
            "customer_id": "u1",
            "channel": "sms",
            "direction": "out",
            "text": text,
            "recipient_id": to,
            "created_at": "2026-11-22T00:00:00Z",
            **extra,
        }
    )


async def test_replies_go_through_twilios_rest_client_and_errors_are_classified(standin: TwilioStandIn) -> None:
    sender = TwilioSmsOutput(ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, api_base_url=standin.base_url)
    await sender.start()
    try:
        choices = [QuickReply(title="订单 202611150001", payload="202611150001")]
        sid = await sender.send(reply("请选择订单", quick_replies=choices))
        assert sid is not None and sid.startswith("SM")
        assert standin.sent == [{"To": CUSTOMER, "From": FROM_NUMBER, "Body": "请选择订单\n1. 订单 202611150001"}]

        with pytest.raises(DeliveryFailed) as invalid:
            await sender.send(reply("hi", to=INVALID_NUMBER))
        assert invalid.value.permanent

        await standin.stop()
        with pytest.raises(DeliveryFailed) as down:
            await sender.send(reply("hi"))
        assert not down.value.permanent
    finally:
        await sender.close()


def test_render_text_without_choices_is_the_text() -> None:
    assert text_with_choices(reply("您好")) == "您好"


def test_a_list_the_text_already_gives_is_not_repeated() -> None:
    choices = [
        QuickReply(title="202678650002 护眼台灯", payload="202678650002"),
        QuickReply(title="转人工", payload="h"),
    ]
    listed = reply("请问是哪一个？\n1. 202678650002 护眼台灯\n2. 转人工", quick_replies=choices)
    assert text_with_choices(listed) == listed.text
    unlisted = reply("请问是哪一个？", quick_replies=choices)
    assert text_with_choices(unlisted) == "请问是哪一个？\n1. 202678650002 护眼台灯\n2. 转人工"
    assert text_with_choices(unlisted, blank_line=True) == "请问是哪一个？\n\n1. 202678650002 护眼台灯\n2. 转人工"


def test_sms_is_enabled_only_when_fully_configured() -> None:
    env = {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN}
    with pytest.raises(SettingsError, match="TWILIO_FROM_NUMBER"):
        GatewayBuilder(Settings.from_env(env)).build()
    gateway = GatewayBuilder(Settings.from_env({**env, "TWILIO_FROM_NUMBER": FROM_NUMBER})).build()
    assert [c.name for c in gateway.channels] == ["rest", "sms"]
    assert [s.name for s in gateway.senders] == ["sms"]


# -- end to end ---------------------------------------------------------------------------


async def test_an_sms_conversation_through_the_gateway_survives_an_outage(
    tmp_path: Path, store: ConversationStore, nlu: NluClient, standin: TwilioStandIn
) -> None:
    settings = Settings(
        gateway=GatewaySettings(var_dir=tmp_path / "var", public_base_url=PUBLIC),
        outbox=OutboxSettings(base_delay=0.05, poll_interval=0.05),
    ).with_channel(
        "sms",
        account_sid=ACCOUNT_SID,
        auth_token=AUTH_TOKEN,
        from_number=FROM_NUMBER,
        api_base_url=standin.base_url,
    )
    gateway = GatewayBuilder(settings).store(store).nlu(nlu).build()  # channels from settings, as in production
    await gateway.seed_orders(DEMO_ORDERS)
    async with TestClient(TestServer(build_app(gateway))) as http:
        form = sms("SM-e2e-1", "帮我查一下订单202611150001到哪了")
        headers = signed(PUBLIC + WEBHOOK_PATH, form)
        assert (await http.post(WEBHOOK_PATH, data=form, headers=headers)).status == 200
        assert (await http.post(WEBHOOK_PATH, data=form, headers=headers)).status == 200  # Twilio retried

        async def answered() -> bool:
            replies = await store.count_messages(direction="out")
            return replies > 0 and await store.count_messages(direction="out", delivered=False) == 0

        await wait_for(answered)
        assert any("202611150001" in s["Body"] for s in standin.sent)
        assert all(s["To"] == CUSTOMER and s["From"] == FROM_NUMBER for s in standin.sent)
        assert len(standin.sent) == await store.count_messages(direction="out")

        await standin.stop()  # Twilio's API unreachable: the next reply waits in the outbox
        form = sms("SM-e2e-2", "我要转人工")
        assert (await http.post(WEBHOOK_PATH, data=form, headers=signed(PUBLIC + WEBHOOK_PATH, form))).status == 200

        async def retried() -> bool:
            return await store.messages.count_documents({"direction": "out", "attempts": {"$gte": 2}}) > 0

        await wait_for(retried)
        before = len(standin.sent)
        await standin.start()

        async def delivered() -> bool:
            return await store.count_messages(direction="out", delivered=False) == 0

        await wait_for(delivered)
        assert len(standin.sent) > before
    assert await store.count_messages(channel="sms", direction="in") == 2


def _jpeg() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 30, 30)).save(buffer, "JPEG")
    return buffer.getvalue()


async def test_mms_media_are_downloaded_into_the_media_store_before_the_200(
    store: ConversationStore, standin: TwilioStandIn, tmp_path: Path
) -> None:
    from store.media import MediaStore

    media = MediaStore(tmp_path / "media", max_bytes=200_000)
    media.use_collection(store.media)
    photo = _jpeg()
    standin.media["ME1"] = (photo, "image/jpeg")
    standin.media["ME-big"] = (b"\xff\xd8\xff" + b"0" * 300_000, "image/jpeg")
    app = web.Application()

    async def already_stored(channel: str, channel_message_id: str) -> bool:
        return await store.count_messages(channel=channel, channel_message_id=channel_message_id) > 0

    sms_in = TwilioSmsInput(AUTH_TOKEN, ACCOUNT_SID, public_base_url=PUBLIC, media=media, already_stored=already_stored)
    app.router.add_routes(sms_in.routes(storing(store)))
    async with TestClient(TestServer(app)) as http:
        form = sms(
            "MM1", "杯子碎了", NumMedia="3",
            MediaUrl0=standin.media_url("MM1", "ME1"), MediaContentType0="image/jpeg",
            MediaUrl1=standin.media_url("MM1", "ME-big"), MediaContentType1="image/jpeg",
            MediaUrl2=standin.media_url("MM1", "ME-gone"), MediaContentType2="image/jpeg",
        )  # fmt: skip
        for _ in range(2):  # Twilio retries; one message
            response = await http.post(WEBHOOK_PATH, data=form, headers=signed(PUBLIC + WEBHOOK_PATH, form))
            assert response.status == 200
    assert standin.media_requests == 3, "the retry (same MessageSid) downloads nothing"
    assert standin.cdn_requests == 2, "redirects followed (the 404 has none)"
    (stored,) = [m async for m in store.messages.find({"channel": "sms", "channel_message_id": "MM1"})]
    first, missing = stored["attachments"]
    assert first["media_id"] and first["content_type"] == "image/jpeg" and first["size"] == len(photo)
    assert await media.read(first["media_id"]) == photo
    assert missing.get("media_id") is None and missing["url"].endswith("/ME-gone"), "a failed download keeps the link"
    assert stored["metadata"]["rejected_attachments"][0]["reason"] == "too_large"
    assert "404" in stored["metadata"]["media_errors"][0]["error"]
