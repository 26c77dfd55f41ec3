"""Resend, compensation (with photo evidence), complaints, urges and invoices."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from gateway import Gateway
from shop.aftersales import RequestType, Step
from store import ConversationState
from store.models import Attachment
from store.mongo import ConversationStore
from tests.selfservice import Customer, events

CUP_AND_GIFT = [
    {"sku": "SKU-CUP-02", "name": "保温杯 480ml", "quantity": 1, "price": 89.0},
    {"sku": "SKU-GIFT-BAG", "name": "礼品袋", "quantity": 1, "price": 0.0, "category": "gift"},
]


async def test_a_missing_gift_is_resent_without_review(client: TestClient[object, object], gateway: Gateway) -> None:
    customer = Customer(client, gateway)
    await customer.order("delivered", delivered_days_ago=1, items=CUP_AND_GIFT)
    confirm = await customer.say("收到了但是赠品没有，少发了礼品袋")
    assert "补发礼品袋" in confirm and not await customer.requests()  # named, then confirmed, then written
    reply = await customer.say("确认")
    assert "补发" in reply and "礼品袋" in reply
    (request,) = await customer.requests()
    assert request.type is RequestType.RESEND and request.status is Step.RESENDING
    assert request.decided_by == "system:small_resend" and request.items[0]["sku"] == "SKU-GIFT-BAG"


async def test_damage_compensation_asks_for_a_photo_and_attaches_it_to_the_ticket(
    client: TestClient[object, object], gateway: Gateway
) -> None:
    customer = Customer(client, gateway)
    await customer.order("delivered", delivered_days_ago=1)
    asked = await customer.say("杯子收到就是碎的，要求赔偿")
    assert "照片" in asked
    # The photo comes alone, without text, on the app: an answer, not "not understood".
    photo = Attachment(kind="image", content_type="image/jpeg", media_id="sha256-abc")
    replies = await customer.on_channel("app", "", sender=customer.chat.sender, attachments=[photo])
    text = " ".join(r.text for r in replies)
    assert "照片已收到" in text and "确认" in text
    replies = await customer.on_channel("app", "确认", sender=customer.chat.sender)
    assert "审核" in " ".join(r.text for r in replies)
    (request,) = await customer.requests()
    assert request.type is RequestType.COMPENSATION and request.evidence == ["sha256-abc"]
    assert gateway.tickets is not None and request.ticket_id is not None
    ticket = await gateway.tickets.get(request.ticket_id)
    assert ticket is not None and ticket.evidence == ["sha256-abc"]


async def test_late_delivery_is_compensated_automatically(client: TestClient[object, object], gateway: Gateway) -> None:
    customer = Customer(client, gateway)
    await customer.order("shipped", paid_days_ago=9)
    confirm = await customer.say("配送延迟太久了，我要申请赔偿")
    assert "¥5.00" in confirm and "确认" in confirm
    reply = await customer.say("确认")
    assert "补偿" in reply and "¥5.00" in reply
    (request,) = await customer.requests()
    assert request.status is Step.COMPLETED and request.decided_by == "system:late_delivery"


async def test_food_safety_complaints_are_urgent_and_repeats_raise_priority(
    client: TestClient[object, object], gateway: Gateway, store: ConversationStore
) -> None:
    customer = Customer(client, gateway)
    reply = await customer.say("我要投诉，你们卖的牛奶喝了拉肚子，食品安全问题")
    assert "投诉单号" in reply and "紧急" in reply
    assert gateway.tickets is not None
    (ticket,) = await gateway.tickets.for_customer(await customer.customer_id())
    assert ticket.type.value == "complaint" and ticket.priority.value == "urgent"
    assert "food safety" in ticket.priority_reasons
    again = await customer.say("我要投诉快递员态度很差，东西直接扔门口")
    assert "已在处理中" in again or "投诉单号" in again
    tickets = await gateway.tickets.for_customer(await customer.customer_id())
    assert tickets[0].contacts == 2 or any("repeat" in " ".join(t.priority_reasons) for t in tickets)
    assert len(await events(store, "complaint_logged")) == 2


async def test_the_second_urge_on_the_same_request_goes_to_an_agent(
    client: TestClient[object, object], gateway: Gateway, store: ConversationStore
) -> None:
    customer = Customer(client, gateway)
    await customer.order("delivered", delivered_days_ago=10, paid_days_ago=14)
    await customer.say("杯子坏了 漏水 我要退货")  # after 7 days, a quality problem: a request in review
    await customer.say("没有照片")
    await customer.say("明天上午")
    await customer.say("确认")
    (request,) = await customer.requests()
    first = await customer.say("我的退款申请怎么还没处理，麻烦快点")
    assert "催促" in first and "审核" in first
    urged = await customer.requests()
    assert urged[0].urges == 1
    assert gateway.tickets is not None and request.ticket_id is not None
    ticket = await gateway.tickets.get(request.ticket_id)
    assert ticket is not None and "customer urged" in ticket.priority_reasons
    second = await customer.say("催一下退款进度")
    assert "人工" in second
    conversation = await store.conversations.find_one({"sender_id": customer.chat.sender})
    assert conversation is not None and conversation["state"] == ConversationState.WAITING_AGENT
    assert conversation["handoff_reason"] == "repeated_urge"


async def test_company_invoice_checks_the_tax_id(client: TestClient[object, object], gateway: Gateway) -> None:
    customer = Customer(client, gateway)
    await customer.order("delivered", delivered_days_ago=2, email="buyer@example.com")
    asked = await customer.say("我要开发票")
    assert "个人还是企业" in asked
    assert "企业名称" in await customer.say("企业")
    assert "税号" in await customer.say("杭州某某科技有限公司")
    assert "校验不通过" in await customer.say("91330106MA27XL0E02")
    asked = await customer.say("91330106MA27XL0E01")
    assert "邮箱" in asked and "buyer@example.com" in asked  # the order's address, offered, not assumed
    confirm = await customer.say("1")
    assert "请确认" in confirm and "buyer@example.com" in confirm
    done = await customer.say("确认")
    assert "开票申请已提交" in done
    (request,) = await customer.requests()
    assert request.type is RequestType.INVOICE and request.status is Step.ISSUING
    assert request.details == {
        "kind": "company",
        "title": "杭州某某科技有限公司",
        "tax_id": "91330106MA27XL0E01",
        "email": "buyer@example.com",
    }


async def test_policy_questions_are_answered_from_the_knowledge_base_with_suggestions(
    client: TestClient[object, object], gateway: Gateway, store: ConversationStore
) -> None:
    customer = Customer(client, gateway)
    await customer.order("delivered", delivered_days_ago=2)
    replies = await customer.chat.send("退货的运费是谁出呀")
    assert "运费由商家承担" in str(replies[0]["text"])
    suggested = [b["title"] for b in replies[0]["buttons"]]  # type: ignore[index]
    assert suggested and "支持七天无理由退货吗？" in suggested  # "猜你想问" for a delivered order
    assert await events(store, "self_service_completed", flow="policy_question", entry="return_shipping_fee")
