"""The promises behind the bot's words are kept downstream: an urge reaches the warehouse, a stalled
parcel's inquiry reaches the courier, and their answers close the tasks and reach the customer. A
bot-approved resend is dispatched by the warehouse, its parcel followed, a problem scan opens an
inquiry the customer hears of, and a parcel the courier confirms lost goes to a person. A failed
pick-up is rebooked for the next day and re-planned; after too many failures a person takes over.
An exchange's replacement is dispatched once the return passed its check, the customer gets its
tracking number (换货已发出), an urge then goes to the courier, and the signed parcel completes it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from backoffice.followups import FollowUpKind
from backoffice.permissions import Role
from backoffice.routing.pickups import PickupStatus
from downstream.events import ScanState
from nlu import NluClient
from shop.aftersales import RequestType, Step
from store.mongo import ConversationStore
from supervisor import free_port
from tests.downstream_support import loop_gateway, loop_settings, settled, standins
from tests.helpers import wait_for
from tests.selfservice import Customer

SHANGHAI = "上海市徐汇区漕溪北路 88 号 1 号楼 502"
CUP_AND_GIFT = [
    {"sku": "SKU-CUP-02", "name": "保温杯 480ml", "quantity": 1, "price": 89.0},
    {"sku": "SKU-GIFT-BAG", "name": "礼品袋", "quantity": 1, "price": 0.0, "category": "gift"},
]


async def told(store: ConversationStore, *words: str) -> bool:
    texts = [d["text"] async for d in store.db["messages"].find({"direction": "out", "author": "system:after_sales"})]
    return any(all(w in t for w in words) for t in texts)


async def test_urges_and_inquiries_go_downstream_and_their_answers_close_the_tasks(
    tmp_path: Path, store: ConversationStore, nlu: NluClient
) -> None:
    async with loop_gateway(tmp_path, store, nlu) as (gateway, http):
        _, warehouse, courier = standins(gateway)
        customer = Customer(http, gateway)
        paid = await customer.order("paid")
        reply = await customer.say(f"订单{paid.order_id}还没发货，帮我催一下发货")
        assert "仓库" in reply
        assert gateway.followups is not None
        (expedite,) = await gateway.followups.for_order(paid.order_id)
        assert expedite.kind is FollowUpKind.WAREHOUSE_EXPEDITE
        await wait_for(lambda: _has(warehouse.orders["expedites"], expedite.id))
        assert warehouse.orders["expedites"][expedite.id]["order_id"] == paid.order_id
        answer = await warehouse.expedite_result(expedite.id, "shipped", tracking_number="SF1400000099")
        assert answer.status == 200
        done = await gateway.followups.get(expedite.id)
        assert done is not None and done.status == "done" and done.result == "shipped"
        assert await told(store, "仓库已加急处理", "SF1400000099")
        await wait_for(lambda: _has(courier.subscriptions, "SF1400000099"))  # the expedited parcel is followed

        stalled = await customer.order("shipped", last_scan_hours_ago=60, paid_days_ago=5)
        reply = await customer.say(f"订单{stalled.order_id}的快递好几天没动了")
        (inquiry,) = [t for t in await gateway.followups.for_order(stalled.order_id)]
        assert inquiry.kind is FollowUpKind.COURIER_INQUIRY
        await wait_for(lambda: _has(courier.work_orders, inquiry.id))
        assert courier.work_orders[inquiry.id]["type"] == "inquiry"
        assert (await courier.work_order_result(inquiry.id, "包裹在杭州转运中心滞留，今天发出")).status == 200
        closed = await gateway.followups.get(inquiry.id)
        assert closed is not None and closed.status == "done" and "滞留" in (closed.result or "")
        assert await told(store, "快递公司关于订单", "滞留")


async def test_a_failed_pickup_is_rebooked_and_replanned_then_handed_to_a_person(
    tmp_path: Path, store: ConversationStore, nlu: NluClient
) -> None:
    port = free_port()
    settings = loop_settings(tmp_path, port, pickup_rebook_limit=1)
    async with loop_gateway(tmp_path, store, nlu, settings=settings) as (gateway, http):
        _, _, courier = standins(gateway)
        customer = Customer(http, gateway)
        order = await customer.order("delivered", delivered_days_ago=2)
        assert gateway.orders is not None and gateway.pickups is not None
        await gateway.orders.upsert([order.model_copy(update={"address": SHANGHAI})])
        await customer.say("这个杯子不想要了，我要退货")
        await customer.say("明天 14:00-18:00")
        assert "极速审核" in await customer.say("确认")
        (request,) = await customer.requests()
        await wait_for(lambda: _has(courier.bookings, request.id))
        first = await gateway.pickups.get(request.id)
        assert first is not None

        async def planned(day: str) -> bool:
            plan = await gateway.pickups.latest_plan(day)  # type: ignore[union-attr]
            return plan is not None and any(s["pickup_id"] == request.id for r in plan["routes"] for s in r["stops"])

        await wait_for(lambda: planned(first.date), 60)
        failed = await courier.pickup_event(request.id, "failed", reason="客户不在家")
        assert failed.status == 200
        again = await gateway.pickups.get(request.id)
        assert again is not None and again.status is PickupStatus.REQUESTED and again.date > first.date
        assert again.attempts[0]["reason"] == "客户不在家" and again.window_start == "14:00"
        assert await told(store, "上门取件未成功", "客户不在家", f"改约 {again.date} 14:00-18:00")
        await wait_for(lambda: planned(again.date), 60)  # re-planned on the new day
        assert courier.bookings[request.id]["dayType"] == again.date  # booked again for it
        assert gateway.backoffice is not None
        _, token = await gateway.backoffice.staff.create("zhao", name="赵调度", roles=[Role.DISPATCHER])
        page = await http.get(f"/console/routes?date={first.date}", headers={"Authorization": f"Bearer {token}"})
        assert page.status == 200  # the dispatcher sees the failed visit on the first day's plan
        assert f"取件失败：客户不在家（改约 {again.date}）" in await page.text()

        assert (await courier.pickup_event(request.id, "failed", reason="地址无人")).status == 200
        final = await gateway.pickups.get(request.id)
        assert final is not None and final.status is PickupStatus.FAILED and len(final.attempts) == 2
        (request,) = await customer.requests()
        assert request.ticket_id and request.status is Step.AWAITING_RETURN
        assert await told(store, "上门取件已 2 次未成功")


async def test_an_exchange_is_dispatched_after_its_check_and_the_customer_gets_the_tracking_number(
    tmp_path: Path, store: ConversationStore, nlu: NluClient
) -> None:
    async with loop_gateway(tmp_path, store, nlu) as (gateway, http):
        _, warehouse, courier = standins(gateway)
        customer = Customer(http, gateway)
        shoes = [{"sku": "SKU-SHOE-42", "name": "跑步鞋 42码", "quantity": 1, "price": 459.0}]
        await customer.order("delivered", delivered_days_ago=3, items=shoes)
        await customer.say("鞋子尺码小了，想换货")
        await customer.say("换43码")
        await customer.say("后天 14:00-18:00")
        assert "极速审核" in await customer.say("好的")
        (request,) = await customer.requests()
        assert request.type is RequestType.EXCHANGE
        await wait_for(lambda: _has(warehouse.orders["returns"], request.id))
        await wait_for(lambda: _has(courier.bookings, request.id))
        assert (await courier.pickup_event(request.id, "collected")).status == 200
        assert (await warehouse.quality_check(request.id, passed=True)).status == 200
        await wait_for(lambda: _has(warehouse.orders["outbounds"], request.id))
        outbound = warehouse.orders["outbounds"][request.id]
        assert outbound["kind"] == "exchange" and outbound["items"][0]["spec"] == "43"
        assert (await warehouse.shipped(request.id, "SF1400012345")).status == 200
        assert await told(store, "换货已发出", "SF1400012345", request.id)
        await wait_for(lambda: _has(courier.subscriptions, "SF1400012345"))
        reply = await customer.say("催一下我的换货")  # on its way: the courier is asked, not the warehouse
        assert "SF1400012345" in reply and "快递公司" in reply
        assert gateway.followups is not None
        (urge,) = [t for t in await gateway.followups.for_order(request.order_id) if t.request_id == request.id]
        await wait_for(lambda: _has(courier.work_orders, urge.id))
        assert courier.work_orders[urge.id]["type"] == "urge"
        assert courier.work_orders[urge.id]["kuaidinum"] == "SF1400012345"
        assert urge.id not in warehouse.orders["expedites"]
        assert (await courier.work_order_result(urge.id, "已催促网点优先派送")).status == 200
        assert await told(store, "快递公司关于订单", "优先派送")
        assert (await courier.scan("SF1400012345", ScanState.SIGNED, "已签收，签收人：本人",
                                   at=datetime.now(UTC))).status == 200  # fmt: skip
        await settled(gateway)
        assert gateway.aftersales is not None
        done = await gateway.aftersales.get(request.id)
        assert done is not None and done.status is Step.COMPLETED
        assert await told(store, "SF1400012345", "已签收", "已完成")
        assert [s.label for s in done.customer_timeline("zh")] == [
            "换货审核中", "待寄回商品", "换新商品准备中", "换新商品已发出", "换货完成",
        ]  # fmt: skip


async def test_a_bot_resend_is_dispatched_followed_and_a_lost_parcel_goes_to_a_person(
    tmp_path: Path, store: ConversationStore, nlu: NluClient
) -> None:
    async with loop_gateway(tmp_path, store, nlu) as (gateway, http):
        _, warehouse, courier = standins(gateway)
        customer = Customer(http, gateway)
        await customer.order("delivered", delivered_days_ago=1, items=CUP_AND_GIFT)
        await customer.say("收到了但是赠品没有，少发了礼品袋")
        assert "补发" in await customer.say("确认")
        (request,) = await customer.requests()
        assert request.type is RequestType.RESEND and request.status is Step.RESENDING
        assert request.customer_status("zh") == "补发处理中"  # decided, but nothing has left yet
        await wait_for(lambda: _has(warehouse.orders["outbounds"], request.id))
        outbound = warehouse.orders["outbounds"][request.id]
        assert outbound["kind"] == "resend" and outbound["items"][0]["sku"] == "SKU-GIFT-BAG"

        reply = await customer.say("催一下补发")
        assert "已请仓库加急" in reply
        assert gateway.followups is not None
        (urge,) = await gateway.followups.for_order(request.order_id)
        assert urge.kind is FollowUpKind.REQUEST_EXPEDITE and urge.request_id == request.id
        await wait_for(lambda: _has(warehouse.orders["expedites"], urge.id))
        assert request.id in warehouse.orders["expedites"][urge.id]["note"]

        assert (await warehouse.shipped(request.id, "SF1400054321")).status == 200
        assert await told(store, "补发商品已发出", "SF1400054321", request.id)
        assert gateway.aftersales is not None
        shipped = await gateway.aftersales.get(request.id)
        assert shipped is not None and shipped.customer_status("zh") == "补发已发出"
        await wait_for(lambda: _has(courier.subscriptions, "SF1400054321"))

        problem = await courier.scan("SF1400054321", ScanState.EXCEPTION, "包裹外包装破损，暂停派送")
        assert problem.status == 200
        assert await told(store, "SF1400054321", "出现异常", "外包装破损", "查件")
        (inquiry,) = [t for t in await gateway.followups.for_order(request.order_id) if t.id != urge.id]
        assert inquiry.kind is FollowUpKind.COURIER_INQUIRY and inquiry.data["tracking_number"] == "SF1400054321"
        await wait_for(lambda: _has(courier.work_orders, inquiry.id))
        assert courier.work_orders[inquiry.id]["kuaidinum"] == "SF1400054321"
        assert (await courier.work_order_result(inquiry.id, "经网点核实，包裹已丢失")).status == 200
        assert await told(store, "包裹已丢失", "补发或全额退款")
        assert gateway.tickets is not None
        (ticket,) = await gateway.tickets.open_tickets(request_id=request.id)
        assert "丢件" in ticket.summary and ticket.order_id == request.order_id


async def test_an_urged_invoice_goes_up_the_finance_queue(
    tmp_path: Path, store: ConversationStore, nlu: NluClient
) -> None:
    """No downstream system issues invoices: "已转财务同事加急" is a ticket a person in finance holds."""
    async with loop_gateway(tmp_path, store, nlu) as (gateway, http):
        customer = Customer(http, gateway)
        await customer.order("delivered", delivered_days_ago=2, email="buyer@example.com")
        await customer.say("我要开发票")
        await customer.say("企业")
        await customer.say("杭州某某科技有限公司")
        await customer.say("91330106MA27XL0E01")
        await customer.say("1")
        assert "开票申请已提交" in await customer.say("确认")
        (request,) = await customer.requests()
        assert request.status is Step.ISSUING and request.ticket_id is None
        reply = await customer.say("发票怎么还没开，帮我催一下发票申请")
        assert "财务" in reply
        assert gateway.followups is not None and gateway.tickets is not None
        (urge,) = await gateway.followups.for_order(request.order_id)

        async def closed() -> bool:
            task = await gateway.followups.get(urge.id)  # type: ignore[union-attr]
            return task is not None and task.status == "done"

        await wait_for(closed)
        (ticket,) = await gateway.tickets.open_tickets(request_id=request.id)
        assert ticket.type.value == "invoice" and ticket.urges == 1
        assert ticket.priority.value in ("high", "urgent")
        assert (await gateway.followups.get(urge.id)).result == ticket.id  # type: ignore[union-attr]


async def _has(mapping: Mapping[str, object], key: str) -> bool:
    return key in mapping
