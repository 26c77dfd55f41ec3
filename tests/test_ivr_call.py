"""The phone IVR end to end: a simulated Twilio call over the real webhook and websocket protocol,
through the real gateway (store, Rasa NLU, dialogue, hand-off desk) with real speech recognition."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from backoffice.settings import BackofficeSettings
from gateway import Gateway, GatewayBuilder, Settings, SettingsError
from gateway.settings import GatewaySettings
from ivr.settings import VoiceSettings
from store.mongo import ConversationStore
from tests.conftest import AUDIO
from tests.twilio_voice import ACCOUNT_SID, AUTH_TOKEN, HOTLINE, PUBLIC, TwilioCall, sign

AGENT_TOKEN = "agent-token"
CALLER = "+8613800138000"  # 张伟 in the demo shop: three orders
BLOCKED = "+8613666666666"

pytestmark = pytest.mark.slow


def recording(name: str) -> bytes:
    return (AUDIO / f"{name}.8k.ulaw").read_bytes()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return (
        Settings(
            gateway=GatewaySettings(var_dir=tmp_path / "var", public_base_url=PUBLIC),
            backoffice=BackofficeSettings(agent_api_token=AGENT_TOKEN),
        )
        .with_channel(
            "voice",
            voice_number=HOTLINE,
            auth_token=AUTH_TOKEN,
            account_sid=ACCOUNT_SID,
            agent_queue="aftersales",
            engines=(("en", "whisper"), ("zh", "whisper")),
            blocklist=(BLOCKED,),
            silence_seconds=0.6,
        )
        .with_channel("sms", auth_token=AUTH_TOKEN, account_sid=ACCOUNT_SID)
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

    await call.press("2026*202611150001#")  # * clears what came before it
    await call.wait_for_mark(3)  # the number read back: 确认请按1，重新输入请按2
    voice = next(c for c in gateway.channels if c.name == "voice")
    assert voice.calls[call.call_sid].prompt.readback == "202611150001"  # type: ignore[attr-defined]
    assert await store.messages.count_documents({"channel": "voice", "direction": "in"}) == 1  # not used yet
    await call.press("1")
    await call.wait_for_mark(4)  # confirmed: the order's status, spoken
    keyed = await store.messages.find_one({"channel_message_id": f"{call.call_sid}:utterance-2"})
    assert keyed is not None and keyed["text"] == "202611150001" and keyed["metadata"]["input"] == "dtmf"
    assert keyed["metadata"]["digits_via"] == "dtmf" and keyed["metadata"]["read_back"] is True
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


async def wait_for_event(store: ConversationStore, name: str, timeout: float = 20.0) -> dict[str, Any]:
    for _ in range(int(timeout * 10)):
        found = await store.events.find_one({"name": name})
        if found is not None:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"no {name} event")


async def test_speaking_over_a_prompt_clears_it_and_a_hang_up_is_an_abandoned_call(
    client: TestClient[Any, Any], store: ConversationStore
) -> None:
    call = TwilioCall(client, CALLER, echo_marks=False)  # the greeting keeps "playing"
    twiml = await call.dial()
    await call.connect(twiml)
    await call.wait_for_mark(1)
    assert call.received.clears() == 0
    await call.send_audio(recording("zhT_w_agent")[:2400])  # the caller starts talking over it
    await call._wait(lambda: call.received.clears() == 1, 10.0, keep_audio=False)
    await call.echo_mark(call.received.marks()[0])  # Twilio confirms the cleared mark
    await call.hang_up()  # before anything was answered
    ended = await wait_for_event(store, "call_ended")
    assert ended["data"]["outcome"] == "abandoned" and ended["data"]["ended_by"] == "caller"
    assert ended["data"]["barge_ins"] == 1
    assert await store.events.count_documents({"name": "call_abandoned"}) == 1


async def test_keys_choose_from_the_menu_and_a_served_caller_who_hangs_up_is_self_service(
    client: TestClient[Any, Any], store: ConversationStore
) -> None:
    call = TwilioCall(client, "+8613911112222")  # Li Na: her latest order has shipped
    twiml = await call.dial()
    await call.connect(twiml)
    await call.wait_for_mark(1)
    await call.press("1")  # logistics comes first for a parcel on its way
    await call.wait_for_mark(2)  # which order? (two)
    first = await store.messages.find_one({"channel_message_id": f"{call.call_sid}:utterance-1"})
    assert first is not None and first["text"] == "查物流" and first["metadata"]["digits"] == "1"
    assert first["metadata"]["scenario"] == "logistics"
    await call.press("1")  # the first order offered
    await call.wait_for_mark(3)
    second = await store.messages.find_one({"channel_message_id": f"{call.call_sid}:utterance-2"})
    assert second is not None and second["text"].isdigit()  # the offered order's number, as a button sends it
    await call.hang_up()
    ended = await wait_for_event(store, "call_ended")
    assert ended["data"]["outcome"] == "self_service", ended["data"]
    assert ended["data"]["scenario"] == "logistics" and ended["data"]["completed_flows"] == ["order_status"]
    assert await store.events.count_documents({"name": "call_self_service_completed"}) == 1


async def test_a_number_calling_too_often_is_rejected_and_a_retried_webhook_starts_nothing_twice(
    client: TestClient[Any, Any], store: ConversationStore
) -> None:
    first = TwilioCall(client, "+8613700000001")
    assert await first.dial() == await first.dial()  # Twilio retried: same answer
    assert await store.events.count_documents({"name": "call_started"}) == 1
    for _ in range(4):
        await TwilioCall(client, "+8613700000001").dial()
    sixth = ET.fromstring(await TwilioCall(client, "+8613700000001").dial())
    assert sixth.find("Hangup") is not None and "频繁" in (sixth.findtext("Say") or "")
    assert [e["data"]["reason"] async for e in store.events.find({"name": "call_rejected"})] == ["rate"]


async def test_a_stream_without_the_calls_token_or_for_an_unknown_call_is_refused(
    client: TestClient[Any, Any], store: ConversationStore
) -> None:
    call = TwilioCall(client, CALLER)
    twiml = await call.dial()
    forged = twiml.replace(f'value="{ET.fromstring(twiml).find("Connect/Stream/Parameter").get("value")}"', 'value="x"')
    await call.connect(forged)
    await call.wait_closed(timeout=10)
    assert call.received.media_frames == 0
    status, _ = await call.post(PUBLIC + "/webhooks/twilio/voice/next", call.form(), signed=False)
    assert status == 403


def test_a_half_configured_phone_line_stops_the_start_with_what_is_missing() -> None:
    base = {"TWILIO_VOICE_NUMBER": HOTLINE, "TWILIO_AUTH_TOKEN": AUTH_TOKEN}
    cases = {
        "IVR_AGENT_QUEUE": base,
        "TWILIO_AUTH_TOKEN": {"TWILIO_VOICE_NUMBER": HOTLINE, "IVR_AGENT_QUEUE": "q"},
        "VOSK_MODEL_ZH": {**base, "IVR_AGENT_QUEUE": "q", "IVR_ENGINE_ZH": "vosk"},  # asked for, not configured
        "exactly one": {**base, "IVR_AGENT_QUEUE": "q", "IVR_AGENT_NUMBER": "+861"},
        "nope: no such directory": {
            **base,
            "IVR_AGENT_QUEUE": "q",
            "VOSK_MODEL_ZH": "/nope",
            "IVR_ENGINE_EN": "whisper",
        },
    }
    for missing, env in cases.items():
        with pytest.raises(SettingsError, match=missing):
            GatewayBuilder(Settings.from_env(env)).build()
    working = {
        **base,
        "IVR_AGENT_SIP": "sip:desk@pbx.example.com",
        "IVR_ENGINE_ZH": "whisper",
        "IVR_ENGINE_EN": "whisper",
    }
    gateway = GatewayBuilder(Settings.from_env(working)).build()
    assert [c.name for c in gateway.channels] == ["rest", "voice"]  # no SMS without TWILIO_FROM_NUMBER


def test_a_phone_line_with_no_engine_or_model_set_starts_on_whisper_and_a_vosk_model_picks_vosk() -> None:
    line = {"TWILIO_VOICE_NUMBER": HOTLINE, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "IVR_AGENT_QUEUE": "q"}
    gateway = GatewayBuilder(Settings.from_env(line)).build()  # what a fresh `make setup` has
    voice = next(c for c in gateway.channels if c.name == "voice")
    config = voice.engines.config  # type: ignore[attr-defined]
    assert (config.engine_for("zh"), config.engine_for("en")) == ("whisper", "whisper")
    with_model = VoiceSettings(vosk_models=(("ko", Path("/models/ko")), ("en", Path("/models/en"))))
    config = with_model.engine_config()
    assert (config.engine_for("ko"), config.engine_for("zh"), config.engine_for("en")) == ("vosk", "whisper", "vosk")
    overridden = Settings.from_env({**line, "VOSK_MODEL_ZH": "/models/cn", "IVR_ENGINE_ZH": "whisper"})
    overridden.channel("voice").validate()  # the model is not needed, so its path is not checked
    assert overridden.channel("voice").engine_config().engine_for("zh") == "whisper"


async def test_a_caller_id_nobody_attested_names_no_customer(
    client: TestClient[Any, Any], store: ConversationStore
) -> None:
    """Security finding 8: the calling number was taken as the caller's identity, so anyone who
    spoofed a customer's number heard their orders. Without the carrier's attestation the number
    is a hint: no orders looked up for the greeting, no identity linked to what the caller says."""
    call = TwilioCall(client, "+8613911112222", attestation="No-TN-Validation")  # Li Na's number, spoofed
    twiml = await call.dial()
    await call.connect(twiml)
    await call.wait_for_mark(1)
    await call.press("1")
    await call.wait_for_mark(2)
    first = await store.messages.find_one({"channel_message_id": f"{call.call_sid}:utterance-1"})
    assert first is not None and first["metadata"]["caller_id_unverified"] is True
    customer = await store.customers.find_one({"_id": first["customer_id"]})
    assert customer is not None and "phone" not in customer["identities"]
    started = await wait_for_event(store, "call_started")
    assert started["data"]["known_caller"] is False
    await call.hang_up()
