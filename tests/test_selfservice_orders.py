"""Self-service on orders through the REST channel: address and delivery-time changes (and their
refusals), order verification, numbered choices. The orders' records are asserted, not only words."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient

from gateway import Gateway
from store import ConversationState
from store.mongo import ConversationStore
from tests.helpers import Chat, unique_sender
from tests.selfservice import Customer, events


async def test_address_change_before_picking_is_validated_confirmed_and_written(
    client: TestClient[object, object], gateway: Gateway, store: ConversationStore
) -> None:
    customer = Customer(client, gateway)
    order = await customer.order("paid")
    asked = await customer.say("我想改一下收货地址")
    assert order.order_id in asked and "完整收货地址" in asked
    incomplete = await customer.say("南山区科技园路1号")
    assert "省份" in incomplete and "城市" in incomplete
    assert (await customer.fresh(order)).address == order.address, "nothing written before confirmation"
    confirm = await customer.say("广东省深圳市南山区科技园路1号")
    assert "请确认" in confirm and "广东省深圳市南山区科技园路1号" in confirm
    done = await customer.say("确认")
    assert "已为您将订单" in done
    changed = await customer.fresh(order)
    assert changed.address == "广东省深圳市南山区科技园路1号"
    assert [(c.field, c.old, c.new) for c in changed.changes] == [
        ("address", order.address, "广东省深圳市南山区科技园路1号")
    ]
    assert changed.changes[0].actor.startswith("customer:")
    assert await events(store, "self_service_completed", flow="change_address", order_id=order.order_id)


async def test_address_change_after_shipping_is_refused_and_offers_a_redirect_by_an_agent(
    client: TestClient[object, object], gateway: Gateway, store: ConversationStore
) -> None:
    customer = Customer(client, gateway)
    order = await customer.order("shipped")
    refused = await customer.say("帮我改下收货地址")
    assert "无法直接修改" in refused and "改派" in refused
    assert (await customer.fresh(order)).address == order.address
    handed = await customer.say("转人工改派")
    assert "改派" in handed and "第" in handed
    conversation = await store.conversations.find_one({"sender_id": customer.chat.sender})
    assert conversation is not None and conversation["state"] == ConversationState.WAITING_AGENT
    summary = conversation["handoff_summary"]
    assert summary["reason"] == "order_redirect"
    assert summary["details"]["order_id"] == order.order_id
    assert [o["order_id"] for o in summary["orders"]] == [order.order_id]


async def test_cancelling_a_flow_changes_nothing(client: TestClient[object, object], gateway: Gateway) -> None:
    customer = Customer(client, gateway)
    order = await customer.order("paid")
    await customer.say("我要修改收货地址")
    await customer.say("上海市浦东新区张江路88弄3号")
    cancelled = await customer.say("算了")
    assert "取消" in cancelled
    assert (await customer.fresh(order)).address == order.address


async def test_delivery_time_change_takes_date_and_slot_from_one_message(
    client: TestClient[object, object], gateway: Gateway
) -> None:
    customer = Customer(client, gateway)
    order = await customer.order("paid")
    confirm = await customer.say("配送时间能改到后天下午吗")
    assert "请确认" in confirm and "14:00-18:00" in confirm
    await customer.say("好的")
    changed = await customer.fresh(order)
    assert changed.delivery_slot is not None and changed.delivery_slot.endswith("14:00-18:00")
    assert changed.changes[-1].field == "delivery_slot"


@pytest.mark.parametrize("said_on_saturday", [True, False])
async def test_a_bare_weekday_said_on_that_day_books_the_next_one(
    client: TestClient[object, object], gateway: Gateway, said_on_saturday: bool
) -> None:
    """ "周六送" on a Saturday (shop time) means next Saturday, said in the reply; on a Friday it means
    tomorrow. The NLU reads 周六 as the coming Saturday (today, if it is one); the dialogue's clock is
    pinned to that Saturday or to the Friday before it."""
    zone = ZoneInfo(gateway.settings.shop.timezone)
    today = datetime.now(zone).date()
    saturday = today + timedelta(days=(5 - today.weekday()) % 7)
    said_on = saturday if said_on_saturday else saturday - timedelta(days=1)
    assert gateway.turns is not None
    gateway.turns.dialogue.context.clock = lambda: datetime.combine(said_on, time(10), zone)
    customer = Customer(client, gateway)
    order = await customer.order("paid")
    confirm = await customer.say("周六送吧 配送时间改一下")
    booked = saturday + timedelta(days=7) if said_on_saturday else saturday
    assert "请确认" in confirm and booked.isoformat() in confirm, confirm
    assert ("今天已经是周六" in confirm) is said_on_saturday
    await customer.say("确认")
    changed = await customer.fresh(order)
    assert changed.delivery_slot is not None and changed.delivery_slot.startswith(booked.isoformat())


async def test_someone_elses_order_needs_the_phone_number_on_it(
    client: TestClient[object, object], gateway: Gateway
) -> None:
    owner = Customer(client, gateway)
    order = await owner.order("paid")
    stranger = Chat(client, unique_sender())  # not signed in: no phone linked
    asked = " ".join(await stranger.texts(f"订单{order.order_id}要改地址"))
    assert "手机号" in asked
    wrong = " ".join(await stranger.texts("13000000000"))
    assert "不一致" in wrong
    right = " ".join(await stranger.texts(owner.phone))
    assert "验证通过" in right and "完整收货地址" in right


async def test_several_orders_are_offered_and_a_number_picks_one(
    client: TestClient[object, object], gateway: Gateway
) -> None:
    customer = Customer(client, gateway)
    first = await customer.order("paid", paid_days_ago=1)
    second = await customer.order("paid", paid_days_ago=2)
    offer = await customer.say("我要改地址")
    assert first.order_id in offer and second.order_id in offer
    picked = await customer.say("2")
    assert second.order_id in picked and "完整收货地址" in picked
