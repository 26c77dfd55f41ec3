"""Refunds, returns and exchanges: the automatic approvals (闪电退款, 极速审核) and the cases that go
to review (after 7 days, excluded categories, photos needed), with their after-sales records."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from gateway import Gateway
from shop.aftersales import RequestType, Step
from store.mongo import ConversationStore
from tests.helpers import Chat, unique_sender
from tests.selfservice import Customer, events


async def test_lightning_refund_cancels_an_unpicked_order_and_records_every_step(
    client: TestClient[object, object], gateway: Gateway
) -> None:
    customer = Customer(client, gateway)
    order = await customer.order("paid")
    offer = await customer.say("还没发货，帮我取消订单退款")
    assert "确认取消这个订单" in offer and "¥89.00" in offer
    done = await customer.say("确认")
    assert "闪电退款" in done
    assert (await customer.fresh(order)).status.value == "cancelled"
    (request,) = await customer.requests()
    assert request.type is RequestType.REFUND and request.amount == 89.0
    assert request.status is Step.PAYMENT_PROCESSING
    assert request.decided_by == "system:lightning_refund"
    assert [(e.step, e.actor) for e in request.timeline] == [
        (Step.APPLIED, "customer"),
        (Step.APPROVED, "system:lightning_refund"),
        (Step.PAYMENT_PROCESSING, "payment_centre"),
    ]
    assert [s.label for s in request.customer_timeline("zh")] == ["退款审核中", "退款中"]
    assert [e["label"] for e in request.agent_timeline("zh")] == ["申请", "审核通过", "支付中心受理"]
    again = await customer.say("帮我退款")
    assert request.id in again and "不用再提交" in again


async def test_refund_of_a_delivered_order_offers_return_or_partial_refund_for_review(
    client: TestClient[object, object], gateway: Gateway
) -> None:
    customer = Customer(client, gateway)
    order = await customer.order("delivered", delivered_days_ago=2)
    offer = await customer.say("我要退款")
    assert "退货退款" in offer and "部分退款" in offer
    asked = await customer.say("部分退款")
    assert "多少" in asked
    confirm = await customer.say("退30元吧，杯盖有划痕")
    assert "部分退款 ¥30.00" in confirm and order.order_id in confirm  # named before it is written
    assert not await customer.requests()
    submitted = await customer.say("确认")
    assert "已提交审核" in submitted
    (request,) = await customer.requests()
    assert request.amount == 30.0 and request.details["partial"] is True
    assert request.status is Step.REVIEWING and request.ticket_id
    assert gateway.tickets is not None
    ticket = await gateway.tickets.get(request.ticket_id)
    assert ticket is not None and ticket.order_id == order.order_id and ticket.type.value == "refund"


async def test_return_within_seven_days_is_approved_with_a_code_and_a_pickup(
    client: TestClient[object, object], gateway: Gateway, store: ConversationStore
) -> None:
    customer = Customer(client, gateway)
    order = await customer.order("delivered", delivered_days_ago=2)
    asked = await customer.say("这个杯子不想要了，我要退货")
    assert "取件" in asked
    confirm = await customer.say("明天 09:00-12:00")
    assert "请确认" in confirm and "七天无理由" in confirm and "¥89.00" in confirm
    approved = await customer.say("确认")
    assert "极速审核" in approved and "退货码" in approved
    (request,) = await customer.requests()
    assert request.type is RequestType.RETURN_REFUND and request.status is Step.AWAITING_RETURN
    assert request.decided_by == "system:seven_day_return"
    assert request.details["return_code"].startswith("RT")
    pickup = await store.db["pickups"].find_one({"_id": request.id})
    assert pickup is not None and pickup["order_id"] == order.order_id and pickup["window_start"] == "09:00"
    assert await events(store, "self_service_completed", flow="return_refund", request_id=request.id)


async def test_a_change_of_mind_after_seven_days_is_refused_with_the_rule(
    client: TestClient[object, object], gateway: Gateway
) -> None:
    customer = Customer(client, gateway)
    await customer.order("delivered", delivered_days_ago=12, paid_days_ago=15)
    reply = await customer.say("我要退货，不想要了")
    assert "超过了 7 天无理由退货的期限" in reply and "质量问题" in reply  # what they can still do
    assert not await customer.requests()


async def test_a_quality_return_after_seven_days_goes_to_review(
    client: TestClient[object, object], gateway: Gateway
) -> None:
    customer = Customer(client, gateway)
    await customer.order("delivered", delivered_days_ago=12, paid_days_ago=15)
    asked = await customer.say("杯子坏了 漏水 我要退货")
    assert "照片" in asked
    await customer.say("没有照片")
    confirm = await customer.say("明天上午")
    assert "请确认" in confirm and "审核" in confirm
    await customer.say("确认")
    (request,) = await customer.requests()
    assert request.status is Step.REVIEWING and request.decided_by is None and request.ticket_id


async def test_excluded_category_goes_to_review_even_within_seven_days(
    client: TestClient[object, object], gateway: Gateway
) -> None:
    customer = Customer(client, gateway)
    fresh_food = [{"sku": "SKU-CRAB-6", "name": "阳澄湖大闸蟹 6只", "quantity": 1, "price": 399.0, "category": "fresh"}]
    await customer.order("delivered", delivered_days_ago=1, items=fresh_food)
    asked = await customer.say("大闸蟹不想要了，我要退货退款")
    assert "取件" in asked
    confirm = await customer.say("明天上午")
    assert "生鲜食品" in confirm and "审核" in confirm
    await customer.say("确认")
    (request,) = await customer.requests()
    assert request.status is Step.REVIEWING and request.amount == 399.0


async def test_a_return_of_an_unshipped_order_becomes_a_cancellation(
    client: TestClient[object, object], gateway: Gateway
) -> None:
    customer = Customer(client, gateway)
    await customer.order("paid")
    reply = await customer.say("我要退货退款")
    assert "确认取消这个订单" in reply


async def test_exchange_for_a_size_within_seven_days_is_approved(
    client: TestClient[object, object], gateway: Gateway
) -> None:
    customer = Customer(client, gateway)
    shoes = [{"sku": "SKU-SHOE-42", "name": "跑步鞋 42码", "quantity": 1, "price": 459.0}]
    await customer.order("delivered", delivered_days_ago=3, items=shoes)
    asked = await customer.say("鞋子尺码小了，想换货")
    assert "规格" in asked
    pickup = await customer.say("换43码")
    assert "取件" in pickup
    await customer.say("后天 14:00-18:00")
    approved = await customer.say("好的")
    assert "极速审核" in approved
    (request,) = await customer.requests()
    assert request.type is RequestType.EXCHANGE and request.details["spec"] == "43"
    assert request.status is Step.AWAITING_RETURN


async def test_a_request_left_half_done_by_a_crash_is_finished_not_duplicated(
    client: TestClient[object, object], gateway: Gateway
) -> None:
    customer = Customer(client, gateway)
    order = await customer.order("paid")
    await customer.say("你好")  # the customer exists
    assert gateway.aftersales is not None and gateway.orders is not None
    # What an interrupted turn leaves: the request applied and the order already cancelled.
    interrupted, _ = await gateway.aftersales.create(
        type=RequestType.REFUND, order_id=order.order_id, customer_id=await customer.customer_id(), actor="customer",
        amount=order.amount,
    )  # fmt: skip
    await gateway.orders.cancel(order.order_id, actor="customer:x", reason=interrupted.id)
    await customer.say("帮我取消订单退款")
    (request,) = await customer.requests()
    assert request.id == interrupted.id and request.status is Step.PAYMENT_PROCESSING


async def test_the_reason_given_with_a_return_survives_the_phone_verification(
    client: TestClient[object, object], gateway: Gateway
) -> None:
    owner = Customer(client, gateway)
    order = await owner.order("delivered", delivered_days_ago=2)
    stranger = Chat(client, unique_sender())  # not signed in: the order must be verified first
    asked = " ".join(await stranger.texts(f"订单{order.order_id}这个杯子不想要了，我要退货"))
    assert "手机号" in asked
    verified = " ".join(await stranger.texts(owner.phone))
    assert "验证通过" in verified and "取件" in verified and "原因" not in verified
    confirm = " ".join(await stranger.texts("明天 09:00-12:00"))
    assert "七天无理由" in confirm
