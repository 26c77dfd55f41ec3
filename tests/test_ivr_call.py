"""The phone IVR end to end: a simulated Twilio call over the real webhook and websocket protocol,
through the real gateway (store, Rasa NLU, dialogue, hand-off desk) with real speech recognition."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway import Gateway, Settings
from store import ConversationStore
from tests.conftest import REPO_ROOT
from tests.twilio_voice import ACCOUNT_SID, AUTH_TOKEN, HOTLINE, PUBLIC, TwilioCall, sign

AUDIO = REPO_ROOT.parent / "shared" / "data" / "audio"
AGENT_TOKEN = "agent-token"
CALLER = "+8613800138000"  # 张伟 in the demo shop: three orders
BLOCKED = "+8613666666666"

pytestmark = pytest.mark.slow


def recording(name: str) -> bytes:
    return (AUDIO / f"{name}.8k.ulaw").read_bytes()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        var_dir=tmp_path / "var",
        agent_api_token=AGENT_TOKEN,
        twilio_voice_number=HOTLINE,
        twilio_auth_token=AUTH_TOKEN,
        twilio_account_sid=ACCOUNT_SID,
        public_base_url=PUBLIC,
        ivr_agent_queue="aftersales",
        ivr_engines=(("en", "whisper"), ("zh", "whisper")),
        ivr_blocklist=(BLOCKED,),
        ivr_silence_seconds=0.6,
    )


async def events(store: ConversationStore, name: str) -> list[dict[str, Any]]:
    return [e async for e in store.events.find({"name": name})]


async def test_a_call_greets_takes_a_spoken_choice_and_keyed_order_number_answers_and_transfers(
    client: TestClient[Any, Any], gateway: Gateway, store: ConversationStore
) -> None:
    call = TwilioCall(client, CALLER)
    twiml = await call.dial()
    root = ET.fromstring(twiml)
    assert root.find("Connect/Stream") is not None and root.find("Connect").get("action", "").startswith(PUBLIC)
    await call.connect(twiml)
    await call.wait_for_mark(1)  # the greeting, streamed as audio
    assert call.received.media_frames > 100  # several seconds of prompt

    await call.say(recording("zhT_w_order"))  # "查订单", from real Mandarin audio
    await call.wait_for_mark(2)  # which order? (张伟 has three)
    first = await store.messages.find_one({"channel": "voice", "direction": "in"})
    assert first is not None
    assert first["channel_message_id"] == f"{call.call_sid}:utterance-1"
    assert first["metadata"]["input"] == "speech" and first["metadata"]["engine"] == "whisper"
    assert first["text"] == "查订单", first["metadata"]["transcript"]  # the menu choice it was heard as

    await call.press("202611150001#")
    await call.wait_for_mark(3)  # the order's status, spoken
    keyed = await store.messages.find_one({"channel_message_id": f"{call.call_sid}:utterance-2"})
    assert keyed is not None and keyed["text"] == "202611150001" and keyed["metadata"]["input"] == "dtmf"
    answer = await store.messages.find_one({"in_reply_to": keyed["_id"], "direction": "out"})
    assert answer is not None and "202611150001" in answer["text"] and "已发货" in answer["text"]

    await call.say(recording("zhT_w_agent"))  # "转人工"
    await call.wait_closed()  # the hand-off prompt played; the gateway ends the stream
    next_twiml = await call.follow_action(twiml)
    assert ET.fromstring(next_twiml).findtext("Enqueue") == "aftersales", next_twiml
    await call.close()

    conversation = await store.conversations.find_one({"channel": "voice"})
    assert conversation is not None and conversation["state"] == "waiting_agent"
    queue = await client.get("/api/agent/queue", headers={"Authorization": f"Bearer {AGENT_TOKEN}"})
    assert queue.status == 200
    waiting = (await queue.json())["waiting"]
    summary = next(c for c in waiting if c["conversation_id"] == conversation["_id"])["summary"]
    said = [line["text"] for line in summary["call"]["transcript"] if line["from"] == "caller"]
    assert said[:2] == ["查订单", "202611150001"] and len(said) == 3
    assert summary["customer"]["identities"]["phone"] == "13800138000"

    assert len(await events(store, "call_started")) == 1
    ended = await events(store, "call_ended")
    assert len(ended) == 1 and ended[0]["data"]["outcome"] == "transferred"
    assert ended[0]["data"]["scenario"] == "order_status"
    assert len(await events(store, "call_transferred")) == 1


async def test_a_blocklisted_number_is_turned_away_politely_and_counted(
    client: TestClient[Any, Any], store: ConversationStore
) -> None:
    call = TwilioCall(client, BLOCKED)
    twiml = ET.fromstring(await call.dial())
    assert twiml.find("Say") is not None and twiml.find("Hangup") is not None and twiml.find("Connect") is None
    rejected = await events(store, "call_rejected")
    assert [e["data"]["reason"] for e in rejected] == ["blocklist"]
    assert await store.count_messages() == 0


async def test_a_webhook_with_a_bad_signature_gets_403(client: TestClient[Any, Any], store: ConversationStore) -> None:
    call = TwilioCall(client, CALLER)
    form = call.form()
    for headers in ({}, sign(PUBLIC + "/webhooks/twilio/voice", form, token="wrong")):
        response = await client.post("/webhooks/twilio/voice", data=form, headers=headers)
        assert response.status == 403
    handshake = await client.get("/webhooks/twilio/voice/stream", headers=sign("wss://cs.example.com/x", {}))
    assert handshake.status == 403
    assert await events(store, "call_started") == []
