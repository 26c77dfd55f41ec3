"""``IVR_PROMPTS=say``: Twilio's own voices speak the prompts (``<Say language="zh-CN">``); the gateway
closes the stream after each utterance and the ``<Connect>`` action URL returns the next
``<Say>`` + ``<Connect><Stream>``, or the transfer."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway import Settings
from gateway.settings import GatewaySettings
from store.mongo import ConversationStore
from tests.test_ivr_call import AUDIO, CALLER, wait_for_event
from tests.twilio_voice import ACCOUNT_SID, AUTH_TOKEN, HOTLINE, PUBLIC, TwilioCall

pytestmark = pytest.mark.slow


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return (
        Settings(gateway=GatewaySettings(var_dir=tmp_path / "var", public_base_url=PUBLIC))
        .with_channel(
            "voice",
            voice_number=HOTLINE,
            auth_token=AUTH_TOKEN,
            account_sid=ACCOUNT_SID,
            agent_sip="sip:desk@pbx.example.com",
            prompts="say",
            engines=(("en", "whisper"), ("zh", "whisper")),
            silence_seconds=0.6,
        )
        .with_channel("sms", auth_token=AUTH_TOKEN, account_sid=ACCOUNT_SID)
    )


async def test_prompts_are_spoken_by_say_and_the_stream_reconnects_after_each_answer(
    client: TestClient[Any, Any], store: ConversationStore
) -> None:
    call = TwilioCall(client, CALLER)
    twiml = await call.dial()
    greeting = ET.fromstring(twiml)
    assert greeting.find("Say").get("language") == "zh-CN" and "人工服务请按0" in greeting.findtext("Say")
    await call.connect(twiml)
    await call.say((AUDIO / "zhT_w_order.8k.ulaw").read_bytes())
    await call.wait_closed()  # the gateway has an answer: Twilio is to fetch it
    assert call.received.media_frames == 0  # nothing streamed in this mode
    await call.close()
    follow = await call.follow_action(twiml)
    again = ET.fromstring(follow)
    gather = again.find("Gather")  # which order? — keys may be pressed while Twilio speaks it
    assert gather is not None and gather.get("finishOnKey") == "#" and "订单" in gather.findtext("Say")
    assert again.find("Connect/Stream") is not None  # or the caller speaks it
    status, body = await call.post(gather.get("action"), call.form(Digits="99*202611150001"))  # * cleared 99
    readback = ET.fromstring(body)
    assert status == 200 and "2 0 2 6 1 1 1 5 0 0 0 1" in readback.findtext("Gather/Say")
    assert readback.find("Gather").get("numDigits") == "1"
    status, body = await call.post(gather.get("action"), call.form(Digits="1"))  # confirmed
    status_twiml = ET.fromstring(body)
    assert status == 200 and "202611150001" in "".join(status_twiml.itertext()), body
    keyed = await store.messages.find_one({"channel": "voice", "direction": "in", "text": "202611150001"})
    assert keyed is not None and keyed["metadata"]["digits_via"] == "dtmf" and keyed["metadata"]["read_back"]
    follow = body
    await call.connect(follow)
    await call.press("0")  # a person
    await call.wait_closed()
    await call.close()
    transfer = ET.fromstring(await call.follow_action(follow))
    assert transfer.find("Say") is not None  # the hand-off reply, in Twilio's voice
    sip = transfer.findtext("Dial/Sip") or ""
    conversation = await store.conversations.find_one({"channel": "voice"})
    assert conversation is not None and sip == f"sip:desk@pbx.example.com?X-Conversation-Id={conversation['_id']}"
    assert (await wait_for_event(store, "call_ended"))["data"]["outcome"] == "transferred"
    assert await store.count_messages(channel="voice", direction="in") == 3
