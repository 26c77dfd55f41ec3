"""The hand-off queue ordered by need: food safety, an angry customer, stated urgency, order value
and history go ahead of an ordinary request for a person, waiting time lifts those who have waited,
the skill group comes from what the conversation is about, the place a customer is told is the
real one, and a customer whose place changes a lot hears it on their own channel."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from gateway import Gateway
from store.mongo import ConversationStore
from tests.backoffice_support import contact
from tests.selfservice import Customer


async def test_the_queue_is_ordered_by_need_and_customers_hear_when_their_place_moves_a_lot(
    client: TestClient[object, object], gateway: Gateway, store: ConversationStore
) -> None:
    desk = gateway.handoff
    assert desk is not None

    async def hand_off(text: str, **extra: object) -> tuple[str, int]:
        who = await contact(store, text)
        place = await desk.enqueue(who.conversation_id, reason="customer_asked", channel=who.channel,
                                   customer_id=who.customer_id, **extra)  # type: ignore[arg-type]  # fmt: skip
        assert place.position == await store.queue_position(who.conversation_id)  # what they are told is real
        return who.conversation_id, place.position

    ordinary = [await hand_off("转人工") for _ in range(5)]
    assert [p for _, p in ordinary] == [1, 2, 3, 4, 5]
    food, food_place = await hand_off("吃了你们的牛肉干拉肚子了，转人工")
    angry, angry_place = await hand_off("气死我了，转人工", priority=10, details={"level": "angry"})
    assert (food_place, angry_place) == (1, 2)  # food safety (60) before anger (40), both before the rest
    summary = (await store.get_conversation(food)).handoff_summary  # type: ignore[union-attr]
    assert summary is not None and "food safety" in summary["priority"]["reasons"]
    # The fifth ordinary customer went 5 → 7: not worth a message yet.
    last = ordinary[-1][0]
    assert await store.queue_position(last) == 7
    assert not [m async for m in store.db["messages"].find({"conversation_id": last, "author": "system:handoff"})]
    urgent, urgent_place = await hand_off("急急急，今天必须给我处理，转人工")
    assert urgent_place == 3
    assert await store.queue_position(last) == 8
    told = [m["text"] async for m in store.db["messages"].find({"conversation_id": last, "author": "system:handoff"})]
    assert told == ["排队更新：您现在排在第 8 位，请稍候，专员马上为您服务。"]

    # Waiting lifts: the first ordinary customer handed off 45 minutes ago now goes before the urgent one.
    first = ordinary[0][0]
    doc = await store.conversations.find_one({"_id": first})
    assert doc is not None
    await store.conversations.update_one(
        {"_id": first}, {"$set": {"handed_off_ms": doc["handed_off_ms"] - 45 * 60_000}}
    )
    await desk.announce_positions()
    order = [str(d["_id"]) for d in await store.waiting_documents()]
    assert order[:4] == [food, angry, first, urgent]

    # An agent takes the food-safety case: everyone moves up; the queue is still ordered by need.
    await desk.claim(food, "li")
    assert await store.queue_position(angry) == 1


async def test_the_skill_group_comes_from_what_the_conversation_is_about(
    client: TestClient[object, object], gateway: Gateway, store: ConversationStore
) -> None:
    customer = Customer(client, gateway)
    await customer.order("delivered", delivered_days_ago=2)
    await customer.say("我要退款")
    reply = await customer.say("转人工")
    assert "排在第 1 位" in reply
    doc = await store.conversations.find_one({"customer_id": await customer.customer_id()})
    assert doc is not None and doc["state"] == "waiting_agent"
    assert doc["queue"] == "finance"  # "转人工" names no topic: the refund it followed does
