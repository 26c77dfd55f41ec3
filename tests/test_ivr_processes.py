"""A phone call whose webhooks and media streams reach different gateway processes (a load
balancer in front of several): the call's state is in the store, so each process carries on
where the other left off, utterances are numbered once, and the nuisance window counts every
process's calls. Two real gateways on one store, the real NLU and whisper."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from gateway import GatewayBuilder, Settings, build_app
from gateway.settings import GatewaySettings
from nlu import NluClient
from store.mongo import ConversationStore
from tests.conftest import DEMO_ORDERS
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
            rate_max_calls=2,
            rate_window_seconds=600,
        )
        .with_channel("sms", auth_token=AUTH_TOKEN, account_sid=ACCOUNT_SID)
    )


@pytest_asyncio.fixture
async def two_gateways(
    settings: Settings, store: ConversationStore, nlu: NluClient
) -> AsyncIterator[tuple[TestClient[Any, Any], TestClient[Any, Any]]]:
    clients = []
    for _ in range(2):
        gateway = GatewayBuilder(settings).store(store).nlu(nlu).build()
        await gateway.seed_orders(DEMO_ORDERS)
        client: TestClient[Any, Any] = TestClient(TestServer(build_app(gateway)))
        await client.start_server()
        clients.append(client)
    try:
        yield clients[0], clients[1]
    finally:
        for client in clients:
            await client.close()


async def test_a_call_served_alternately_by_two_processes(
    two_gateways: tuple[TestClient[Any, Any], TestClient[Any, Any]], store: ConversationStore
) -> None:
    a, b = two_gateways
    call = TwilioCall(a, CALLER)
    twiml = await call.dial()  # process A answers the call
    call.http = b
    await call.connect(twiml)  # process B gets its media stream
    await call.say((AUDIO / "zhT_w_order.8k.ulaw").read_bytes())
    await call.wait_closed()
    await call.close()
    call.http = a
    follow = await call.follow_action(twiml)  # A answers what B decided
    assert "订单" in (ET.fromstring(follow).findtext(".//Say") or "")
    gather = ET.fromstring(follow).find("Gather").get("action")  # type: ignore[union-attr]
    call.http = b  # keys for the order number reach B, their confirmation A
    status, readback = await call.post(gather, call.form(Digits="202611150001"))
    assert status == 200 and "2 0 2 6" in (ET.fromstring(readback).findtext(".//Say") or "")
    call.http = a
    status, follow = await call.post(gather, call.form(Digits="1"))
    assert status == 200 and "202611150001" in "".join(ET.fromstring(follow).itertext())
    call.http = b
    await call.connect(follow)
    await call.press("0")
    await call.wait_closed()
    await call.close()
    call.http = a
    transfer = ET.fromstring(await call.follow_action(follow))
    assert (transfer.findtext("Dial/Sip") or "").startswith("sip:desk@pbx.example.com")
    assert (await wait_for_event(store, "call_ended"))["data"]["outcome"] == "transferred"
    utterances = sorted(
        [m["channel_message_id"] async for m in store.messages.find({"channel": "voice", "direction": "in"})]
    )
    assert utterances == [f"{call.call_sid}:utterance-{n}" for n in (1, 2, 3)]
    assert await store.events.count_documents({"name": "call_ended"}) == 1


async def test_the_nuisance_window_counts_calls_to_every_process(
    two_gateways: tuple[TestClient[Any, Any], TestClient[Any, Any]], store: ConversationStore
) -> None:
    a, b = two_gateways
    verdicts = []
    for client in (a, b, a):  # the third call within the window, whichever process takes it
        twiml = await TwilioCall(client, "+8613911112222").dial()
        verdicts.append(
            ET.fromstring(twiml).find("Reject") is not None or ET.fromstring(twiml).find("Hangup") is not None
        )
    assert verdicts == [False, False, True]
    rejected = await store.events.find_one({"name": "call_rejected"})
    assert rejected is not None and rejected["data"]["reason"] == "rate"
