"""After-sales requests and tickets in the store: one open request per order and type, the
two timelines, closing frees the order, concurrent steps do not interleave, ticket priority."""

from __future__ import annotations

import asyncio

from backoffice import Priority, TicketDesk, TicketType
from shop.aftersales import AfterSalesService, RequestConflict, RequestType, Step
from store.mongo import ConversationStore


async def test_one_open_request_per_order_and_type_and_closing_frees_it(store: ConversationStore) -> None:
    service = AfterSalesService(store.db)
    await service.ensure_indexes()
    first, created = await service.create(type=RequestType.REFUND, order_id="1001", customer_id="c1", actor="customer")
    again, created_again = await service.create(
        type=RequestType.REFUND, order_id="1001", customer_id="c1", actor="customer"
    )
    assert created and not created_again and again.id == first.id
    other, _ = await service.create(type=RequestType.INVOICE, order_id="1001", customer_id="c1", actor="customer")
    assert other.id != first.id, "another type is another request"
    await service.advance(first.id, Step.REJECTED, actor="agent:a1", note="已超时")
    new, created_new = await service.create(
        type=RequestType.REFUND, order_id="1001", customer_id="c1", actor="customer"
    )
    assert created_new and new.id != first.id


async def test_customers_and_agents_see_different_timelines(store: ConversationStore) -> None:
    service = AfterSalesService(store.db)
    request, _ = await service.create(
        type=RequestType.RETURN_REFUND, order_id="1002", customer_id="c1", actor="customer", amount=89
    )
    request = await service.advance(request.id, Step.REVIEWING, actor="system:self_service")
    request = await service.advance(request.id, Step.APPROVED, Step.AWAITING_RETURN, actor="agent:li")
    request = await service.advance(request.id, Step.GOODS_RECEIVED, actor="warehouse:hz")
    request = await service.advance(request.id, Step.PAYMENT_PROCESSING, actor="payment_centre")
    request = await service.advance(request.id, Step.COMPLETED, actor="payment_centre")
    assert [s.label for s in request.customer_timeline("zh")] == ["退货审核中", "待退货", "退款中", "退款成功"]
    assert [s.label for s in request.customer_timeline("en")][-1] == "refunded"
    agent = request.agent_timeline("zh")
    assert [e["label"] for e in agent] == [
        "申请", "审核", "审核通过", "待退回商品", "商家已收货", "支付中心受理", "完成",
    ]  # fmt: skip
    assert [e["actor"] for e in agent][2:5] == ["agent:li", "agent:li", "warehouse:hz"]
    assert not request.open


async def test_concurrent_steps_are_all_kept(store: ConversationStore) -> None:
    service = AfterSalesService(store.db)
    request, _ = await service.create(type=RequestType.RESEND, order_id="1003", customer_id="c1", actor="customer")
    results = await asyncio.gather(
        *(service.advance(request.id, Step.REVIEWING, actor=f"agent:{n}") for n in range(4)),
        return_exceptions=True,
    )
    assert not [r for r in results if isinstance(r, Exception) and not isinstance(r, RequestConflict)]
    final = await service.get(request.id)
    assert final is not None
    written = sum(1 for r in results if not isinstance(r, Exception))
    assert len(final.timeline) == 1 + written, "every accepted step is in the timeline, none lost"


async def test_tickets_join_an_open_one_and_priorities_explain_themselves(store: ConversationStore) -> None:
    desk = TicketDesk(store.db)
    await desk.ensure_indexes()
    food, _ = await desk.open(
        type=TicketType.COMPLAINT, customer_id="c1", summary="牛奶变质", conversation_id="k1", channel="rest",
        food_safety=True,
    )  # fmt: skip
    assert food.priority is Priority.URGENT and "food safety" in food.priority_reasons
    big, _ = await desk.open(
        type=TicketType.REFUND, customer_id="c2", summary="退款", conversation_id="k2", channel="rest",
        order_id="1004", amount=2599,
    )  # fmt: skip
    assert big.priority is Priority.HIGH and big.priority_reasons == ["high value order (2599.00)"]
    plain, created = await desk.open(
        type=TicketType.RESEND, customer_id="c3", summary="少件", conversation_id="k3", channel="rest",
        order_id="1005",
    )  # fmt: skip
    assert created and plain.priority is Priority.NORMAL
    joined, created = await desk.open(
        type=TicketType.RESEND, customer_id="c3", summary="少件", conversation_id="k4", channel="sms",
        order_id="1005",
    )  # fmt: skip
    assert not created and joined.id == plain.id and joined.contacts == 2
    assert joined.channels == ["rest", "sms"] and joined.priority is Priority.HIGH
    urged = await desk.record_urge(plain.id)
    assert urged is not None and "customer urged" in urged.priority_reasons
