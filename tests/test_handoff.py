"""Hand-off triggers, the summary the agent receives, the agent API (claim, reply on the
customer's channel, close) and the bot returning after it; a customer moving between channels."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from backoffice.settings import BackofficeSettings
from gateway import Gateway, Settings
from gateway.settings import GatewaySettings
from shop.aftersales import RequestType
from store import ConversationState
from store.mongo import ConversationStore
from tests.helpers import CUSTOMER_TOKEN_SECRET
from tests.selfservice import Customer, events

TOKEN = "agent-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        gateway=GatewaySettings(var_dir=tmp_path / "var"), backoffice=BackofficeSettings(agent_api_token=TOKEN)
    ).with_channel("rest", customer_token_secret=CUSTOMER_TOKEN_SECRET)


async def conversation_of(store: ConversationStore, sender: str) -> dict[str, object]:
    doc = await store.conversations.find_one({"sender_id": sender})
    assert doc is not None
    return doc


async def test_anger_hands_off_at_once_with_the_cues_in_the_summary(
    client: TestClient[object, object], gateway: Gateway, store: ConversationStore
) -> None:
    customer = Customer(client, gateway)
    reply = await customer.say("你们这什么垃圾服务！！！再不处理我就投诉到12315")
    assert "人工客服" in reply
    conversation = await conversation_of(store, customer.chat.sender)
    assert conversation["state"] == ConversationState.WAITING_AGENT
    summary = conversation["handoff_summary"]
    assert summary["reason"] == "negative_emotion"  # type: ignore[index]
    assert summary["details"]["complaint_threat"] is True  # type: ignore[index]
    assert summary["details"]["cues"]  # type: ignore[index]


async def test_an_angry_complaint_is_both_a_ticket_and_a_hand_off(
    client: TestClient[object, object], gateway: Gateway, store: ConversationStore
) -> None:
    customer = Customer(client, gateway)
    reply = await customer.say("我要投诉！！你们卖的东西是垃圾，客服也是骗子，气死我了")
    assert "投诉单号" in reply and "人工客服" in reply
    assert gateway.tickets is not None
    (ticket,) = await gateway.tickets.for_customer(await customer.customer_id())
    assert ticket.type.value == "complaint"
    conversation = await conversation_of(store, customer.chat.sender)
    assert conversation["state"] == ConversationState.WAITING_AGENT
    assert conversation["handoff_summary"]["tickets"][0]["id"] == ticket.id  # type: ignore[index]


async def test_the_summary_carries_orders_intents_slots_requests_and_other_channels(
    client: TestClient[object, object], gateway: Gateway, store: ConversationStore
) -> None:
    customer = Customer(client, gateway)
    order = await customer.order("paid")
    await customer.on_channel("sms", f"订单{order.order_id}到哪了")  # earlier, on SMS
    await customer.say("帮我取消订单退款")
    await customer.say("确认")
    await customer.say("我要找人工客服")
    conversation = await conversation_of(store, customer.chat.sender)
    summary = conversation["handoff_summary"]
    assert summary["reason"] == "customer_asked"  # type: ignore[index]
    assert summary["customer"]["identities"]["phone"] == customer.phone  # type: ignore[index]
    assert [o["order_id"] for o in summary["orders"]] == [order.order_id]  # type: ignore[index]
    intents = [i["intent"] for i in summary["intents"]]  # type: ignore[index]
    assert intents[0] == "order_status" and "refund" in intents and intents[-1] == "human_handoff"
    assert {i["channel"] for i in summary["intents"]} == {"sms", "rest"}  # type: ignore[index]
    assert [r["type"] for r in summary["aftersales_requests"]] == ["refund"]  # type: ignore[index]
    assert summary["slots"]["last_order_id"] == order.order_id  # type: ignore[index]
    assert [c["channel"] for c in summary["earlier_conversations"]] == ["sms"]  # type: ignore[index]

    customer_id = summary["customer"]["id"]  # type: ignore[index]
    listed = await (await client.get(f"/api/agent/customers/{customer_id}/requests", headers=AUTH)).json()
    (request,) = listed["requests"]
    assert [e["actor"] for e in request["agent_timeline"]] == ["customer", "system:lightning_refund", "payment_centre"]
    assert [s["label"] for s in request["customer_timeline"]] == ["退款审核中", "退款中"]


async def test_an_agent_takes_answers_and_hands_back_and_the_bot_is_silent_meanwhile(
    client: TestClient[object, object], gateway: Gateway, store: ConversationStore
) -> None:
    customer = Customer(client, gateway)
    await customer.say("转人工")
    conversation_id = str((await conversation_of(store, customer.chat.sender))["_id"])

    assert (await client.get("/api/agent/queue")).status == 401
    queue = await (await client.get("/api/agent/queue", headers=AUTH)).json()
    assert conversation_id in [w["conversation_id"] for w in queue["waiting"]]

    claim = await client.post(f"/api/agent/conversations/{conversation_id}/claim", json={"agent": "a1"}, headers=AUTH)
    assert claim.status == 200
    taken = await client.post(f"/api/agent/conversations/{conversation_id}/claim", json={"agent": "a2"}, headers=AUTH)
    assert taken.status == 409

    assert await customer.chat.send("你好，我的订单有问题") == [], "the bot never answers while an agent owns it"
    body = {"agent": "a1", "text": "您好，我是客服小王，请问订单号是多少？", "client_message_id": "m1"}
    sent = await client.post(f"/api/agent/conversations/{conversation_id}/messages", json=body, headers=AUTH)
    assert sent.status == 201
    again = await client.post(f"/api/agent/conversations/{conversation_id}/messages", json=body, headers=AUTH)
    assert (await again.json())["message"]["id"] == (await sent.json())["message"]["id"], "a retry is stored once"
    other = await client.post(
        f"/api/agent/conversations/{conversation_id}/messages", json={"agent": "a2", "text": "hi"}, headers=AUTH
    )
    assert other.status == 409
    outbound = [m async for m in store.messages.find({"conversation_id": conversation_id, "author": "agent:a1"})]
    assert len(outbound) == 1 and outbound[0]["channel"] == "rest"

    closed = await client.post(f"/api/agent/conversations/{conversation_id}/close", json={"agent": "a1"}, headers=AUTH)
    assert closed.status == 200
    assert (await conversation_of(store, customer.chat.sender))["state"] == ConversationState.BOT
    assert "售后" in await customer.say("你好"), "the bot is back"
    assert await events(store, "agent_closed")


async def test_a_flow_started_on_one_channel_resumes_on_another(
    client: TestClient[object, object], gateway: Gateway, store: ConversationStore
) -> None:
    customer = Customer(client, gateway)
    await customer.order("delivered", delivered_days_ago=2)
    asked = await customer.say("我要退货，不想要了")
    assert "取件" in asked
    customer_id = await customer.customer_id()
    on_rest = await store.get_customer(customer_id)
    assert on_rest is not None and len(on_rest.half_done_forms) == 1  # what another channel's turn looks by
    # The customer continues by SMS: the same person (phone), the same half-done return.
    confirm = " ".join(m.text for m in await customer.on_channel("sms", "明天上午"))
    assert "请确认" in confirm
    on_sms = await store.get_customer(customer_id)
    assert on_sms is not None and len(on_sms.half_done_forms) == 1
    assert set(on_sms.half_done_forms) != set(on_rest.half_done_forms)  # the flag moved with the flow
    done = " ".join(m.text for m in await customer.on_channel("sms", "确认"))
    assert "极速审核" in done
    finished = await store.get_customer(customer_id)
    assert finished is not None and finished.half_done_forms == {}
    (request,) = await customer.requests()
    assert request.type is RequestType.RETURN_REFUND and request.channel == "sms"
    assert await events(store, "flow_resumed", from_channel="rest")


async def test_the_same_request_on_two_channels_is_one_request(
    client: TestClient[object, object], gateway: Gateway
) -> None:
    customer = Customer(client, gateway)
    await customer.order("paid")
    await customer.say("帮我取消订单退款")
    await customer.say("确认")
    replies = await customer.on_channel("telegram", "我要退款", sender="tg-12345")
    text = " ".join(m.text for m in replies)
    assert "不用再提交" in text and "网页" in text
    assert len(await customer.requests()) == 1


async def test_a_photo_without_text_is_acknowledged_not_misunderstood(
    client: TestClient[object, object], gateway: Gateway, store: ConversationStore
) -> None:
    from store.models import Attachment

    customer = Customer(client, gateway)
    photo = Attachment(kind="image", content_type="image/jpeg", media_id="sha256-photo")
    replies = await customer.on_channel("app", "", sender="app-user-1", attachments=[photo])
    assert "已收到" in replies[0].text
    assert not await events(store, "not_understood")


async def test_agents_merge_two_customers_explicitly_and_the_merge_is_audited(
    client: TestClient[object, object], gateway: Gateway, store: ConversationStore
) -> None:
    on_telegram = Customer(client, gateway)
    await on_telegram.on_channel("telegram", "你好", sender="tg-merge-1")
    in_app = Customer(client, gateway)
    await in_app.say("你好")
    source, target = await on_telegram.customer_id(), await in_app.customer_id()

    refused = await client.post(
        "/api/agent/customers/merge",
        json={"agent": "a1", "source_id": source, "target_id": target, "reason": "同一人"},
        headers=AUTH,
    )
    assert refused.status == 409 and "phone" in (await refused.json())["error"]["message"], "two different phones"

    await store.customers.update_one({"_id": source}, {"$unset": {"identities.phone": ""}})
    body = {"agent": "a1", "source_id": source, "target_id": target, "reason": "客户电话确认是同一人"}
    merged = await client.post("/api/agent/customers/merge", json=body, headers=AUTH)
    assert merged.status == 200
    assert (await merged.json())["customer"]["identities"]["telegram"] == "tg-merge-1"
    looked_up = await (await client.get(f"/api/agent/customers/{target}", headers=AUTH)).json()
    assert {c["channel"] for c in looked_up["conversations"]} == {"telegram", "rest"}
    (event,) = [e async for e in store.events.find({"name": "customers_merged"})]
    assert event["data"]["actor"] == "agent:a1" and event["data"]["reason"] == "客户电话确认是同一人"
    missing = await client.post("/api/agent/customers/merge", json={**body, "source_id": "nobody"}, headers=AUTH)
    assert missing.status == 404
    assert (await client.post("/api/agent/customers/merge", json=body)).status == 401


async def test_a_refused_file_alone_gets_only_the_notice_of_what_is_accepted(
    client: TestClient[object, object], gateway: Gateway, store: ConversationStore
) -> None:
    customer = Customer(client, gateway)
    refused = {"rejected_attachments": [{"reason": "too_large", "detail": "the file is larger than 10485760 bytes"}]}
    replies = await customer.on_channel("app", "", sender="app-user-2", metadata=refused)
    assert [r.author for r in replies] == ["system"] and "无法接收" in replies[0].text
    assert not await events(store, "not_understood")
