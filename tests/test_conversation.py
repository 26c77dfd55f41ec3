"""Whole conversations through the REST channel, with the real Rasa server and MongoDB server."""

from __future__ import annotations

import asyncio

from aiohttp.test_utils import TestClient

from store import ConversationState
from store.mongo import ConversationStore
from tests.helpers import Chat, unique_sender


async def events(store: ConversationStore, name: str) -> list[dict[str, object]]:
    return [e async for e in store.events.find({"name": name}, {"_id": 0})]


async def conversation_of(store: ConversationStore, sender: str) -> dict[str, object]:
    doc = await store.conversations.find_one({"sender_id": sender})
    assert doc is not None
    return doc


async def test_a_whole_conversation(client: TestClient[object, object], store: ConversationStore) -> None:
    """Greeting, lookup with and without the id, hand-off, silence after it, a retried message."""
    chat = Chat(client, unique_sender())
    assert "售后" in (await chat.texts("您好", message_id="1"))[0]
    assert "已发货" in (await chat.texts("订单202611150001到哪了", message_id="2"))[0]
    assert "订单号" in (await chat.texts("我还有个快递没到", message_id="3"))[0]
    assert "已签收" in (await chat.texts("202611020003", message_id="4"))[0]
    handoff = await chat.texts("转人工", message_id="5")
    assert "第 1 位" in handoff[0]
    assert await chat.send("还在吗", message_id="6") == []
    assert await chat.texts("转人工", message_id="5") == handoff, "a retry gets the reply it missed"

    conversation = await conversation_of(store, chat.sender)
    assert conversation["state"] == ConversationState.WAITING_AGENT
    history = await store.history(str(conversation["_id"]))
    inbound = [m.text for m in history if m.direction == "in"]
    assert inbound == ["您好", "订单202611150001到哪了", "我还有个快递没到", "202611020003", "转人工", "还在吗"]
    completed = await events(store, "self_service_completed")
    assert [e["data"]["order_id"] for e in completed] == ["202611150001", "202611020003"]  # type: ignore[index]


async def test_greeting_offers_what_the_bot_can_do(client: TestClient[object, object]) -> None:
    replies = await Chat(client, unique_sender()).send("你好")
    assert "售后" in str(replies[0]["text"])
    assert [b["payload"] for b in replies[0]["buttons"]] == ["查询订单", "转人工"]  # type: ignore[index]


async def test_order_lookup_with_the_id_in_the_first_message(
    client: TestClient[object, object], store: ConversationStore
) -> None:
    texts = await Chat(client, unique_sender(), phone="13800138000").texts("帮我查一下订单202611150001到哪了")
    answer = texts[0]
    assert "202611150001" in answer and "已发货" in answer and "西湖龙井" in answer  # the owner sees the items
    # The latest logistics descriptions, newest first, exactly as the order gives them.
    assert answer.index("【杭州】快件已发往 西湖营业部") < answer.index("【杭州】快件已到达 杭州转运中心")
    stranger = (await Chat(client, unique_sender()).texts("帮我查一下订单202611150001到哪了"))[0]
    assert "已发货" in stranger and "【杭州】快件已发往 西湖营业部" in stranger  # a tracking page's view …
    assert "西湖龙井" not in stranger and "杭州转运中心" not in stranger  # … only the latest step, no items
    completed = await events(store, "self_service_completed")
    assert [e["data"] for e in completed] == [{"flow": "order_status", "order_id": "202611150001"}] * 2


async def test_order_lookup_asks_for_the_id_when_it_is_missing(
    client: TestClient[object, object], store: ConversationStore
) -> None:
    chat = Chat(client, unique_sender())
    asked = await chat.texts("我的快递到哪了")
    assert "订单号" in asked[0]
    assert not await events(store, "self_service_completed")
    answer = await chat.texts("2026111700000456")
    assert "拣货" in answer[0] and "暂无物流信息" in answer[0]
    assert len(await events(store, "self_service_completed")) == 1


async def test_a_known_customer_chooses_from_recent_orders(client: TestClient[object, object]) -> None:
    chat = Chat(client, unique_sender(), phone="13800138000")
    offer = await chat.send("查订单")
    assert [b["payload"] for b in offer[0]["buttons"]] == [  # type: ignore[index]
        "202611180002",
        "202611150001",
        "202611020003",
    ]
    answer = await chat.texts("3")
    assert "202611020003" in answer[0] and "已签收" in answer[0]


async def test_an_unknown_order_id_is_asked_again(client: TestClient[object, object]) -> None:
    chat = Chat(client, unique_sender())
    texts = await chat.texts("查询订单 99999999999999")
    assert "没有找到" in texts[0]
    texts = await chat.texts("202611100005")
    assert "已取消" in texts[0] and "订单已取消，款项已原路退回" in texts[0]


async def test_english_questions_get_english_answers(client: TestClient[object, object]) -> None:
    chat = Chat(client, unique_sender())
    asked = await chat.texts("where is my order")
    assert asked == ["Please tell me your order number (10–20 digits) and I'll look it up."]
    answer = await chat.texts("202611190006")
    # Not signed in: what a tracking page shows (state and logistics), not the items or the address.
    assert answer[0].startswith("Order 202611190006 is shipped")
    # The demo parcel has not moved for days: said in English, with the courier inquiry it opened.
    assert "no new scan" in answer[1] and "inquiry" in answer[1]


async def test_hand_off_on_request_then_the_bot_stays_silent(
    client: TestClient[object, object], store: ConversationStore
) -> None:
    first, second = Chat(client, unique_sender()), Chat(client, unique_sender())
    assert "第 1 位" in (await first.texts("转人工"))[0]
    assert "第 2 位" in (await second.texts("我要找人工客服"))[0]

    assert await first.send("你好？有人吗") == []
    assert await first.send("查一下订单202611150001") == []
    conversation = await conversation_of(store, first.sender)
    assert conversation["state"] == ConversationState.WAITING_AGENT
    # Silent, but nothing is lost: every customer message is stored.
    assert await store.count_messages(conversation_id=conversation["_id"], direction="in") == 3
    handed = await events(store, "handed_off")
    assert [e["data"]["reason"] for e in handed] == ["customer_asked", "customer_asked"]  # type: ignore[index]


async def test_two_turns_not_understood_in_a_row_hand_off(
    client: TestClient[object, object], store: ConversationStore
) -> None:
    chat = Chat(client, unique_sender())
    clarify = await chat.send("今天天气怎么样")
    assert "没有理解" in str(clarify[0]["text"])
    assert clarify[0]["buttons"] == [{"title": "转人工", "payload": "转人工"}]
    handoff = await chat.texts("给我讲个笑话吧")
    assert "转接人工客服" in handoff[0]
    assert (await conversation_of(store, chat.sender))["state"] == ConversationState.WAITING_AGENT
    handed = await events(store, "handed_off")
    assert handed[0]["data"]["reason"] == "not_understood"  # type: ignore[index]


async def test_an_understood_turn_resets_the_not_understood_count(
    client: TestClient[object, object], store: ConversationStore
) -> None:
    chat = Chat(client, unique_sender())
    await chat.send("今天天气怎么样")
    await chat.send("你好")
    await chat.send("给我讲个笑话吧")
    assert (await conversation_of(store, chat.sender))["state"] == ConversationState.BOT


async def test_a_retried_message_is_stored_once_and_answered_the_same(
    client: TestClient[object, object], store: ConversationStore
) -> None:
    chat = Chat(client, unique_sender())
    first = await chat.send("查一下订单202611150001", message_id="client-42")
    retry = await chat.send("查一下订单202611150001", message_id="client-42")
    assert retry == first
    conversation = await conversation_of(store, chat.sender)
    assert await store.count_messages(conversation_id=conversation["_id"], direction="in") == 1
    assert await store.count_messages(conversation_id=conversation["_id"], direction="out") == len(first)
    assert len(await events(store, "self_service_completed")) == 1


async def test_concurrent_retries_make_one_turn(client: TestClient[object, object], store: ConversationStore) -> None:
    chat = Chat(client, unique_sender())
    answers = await asyncio.gather(*(chat.send("你好", message_id="dup") for _ in range(5)))
    assert all(a == answers[0] for a in answers)
    assert await store.count_messages(direction="in") == 1
    assert await store.count_messages(direction="out") == len(answers[0])


async def test_messages_sent_at_once_are_answered_in_order_once_and_free_the_lease(
    client: TestClient[object, object], store: ConversationStore
) -> None:
    """A sender's messages reaching one process at once: the first takes the conversation's turn
    lease with its accept, the others wait for the sender's turn and take it in their order; each
    is answered once, and the last turn's write of the conversation hands the lease back."""
    chat = Chat(client, unique_sender())
    await chat.send("你好")
    orders = ("202611150001", "202611180002", "202611020003")
    answers = await asyncio.gather(*(chat.send(f"查一下订单{o}", message_id=f"m-{i}") for i, o in enumerate(orders)))
    for order, answer in zip(orders, answers, strict=True):
        assert order in str(answer[0]["text"])
    conversation = await conversation_of(store, chat.sender)
    assert await store.count_messages(conversation_id=conversation["_id"], direction="in") == 1 + len(orders)
    assert await store.unprocessed_inbound() == []
    assert (conversation["turn_owner"], conversation["turn_until_ms"]) == ("", 0)
    replies = [m async for m in store.messages.find({"conversation_id": conversation["_id"], "direction": "out"})]
    answered = [str(m["in_reply_to"]) for m in sorted(replies, key=lambda m: str(m["_id"]))]
    assert answered == sorted(answered), "replies stored in the order of the messages they answer"


async def test_every_turn_logs_the_nlu_result(client: TestClient[object, object], store: ConversationStore) -> None:
    await Chat(client, unique_sender()).send("查一下订单202611150001")
    parsed = await events(store, "nlu_parsed")
    assert parsed[0]["data"]["intent"] == "order_status"  # type: ignore[index]
    assert parsed[0]["data"]["entities"] == ["order_id"]  # type: ignore[index]


async def test_rest_replies_leave_the_outbox_as_delivered(
    client: TestClient[object, object], store: ConversationStore
) -> None:
    replies = await Chat(client, unique_sender()).send("查一下订单202611150001")
    assert await store.count_messages(direction="out") == len(replies)
    assert await store.count_messages(direction="out", delivered=False) == 0


async def test_the_original_text_is_kept_beside_what_the_nlu_read(
    client: TestClient[object, object], store: ConversationStore
) -> None:
    chat = Chat(client, unique_sender())
    replies = await chat.texts("我嘅訂單二零二六幺幺幺五洞洞洞幺喺邊度？")
    assert "202611150001" in replies[0] and "已發貨" in replies[0]  # answered in Hong Kong Traditional
    conversation = await conversation_of(store, chat.sender)
    (message,) = [m for m in await store.history(str(conversation["_id"])) if m.direction == "in"]
    assert message.text == "我嘅訂單二零二六幺幺幺五洞洞洞幺喺邊度？"
    assert message.understanding is not None
    assert message.understanding["normalized_text"] == "我的订单202611150001在哪里?"
    assert message.understanding["traditional"] is True
    assert message.understanding["varieties"] == ["cantonese"]
    assert message.understanding["intent"] == "order_status"
    assert [(e["entity"], e["value"]) for e in message.understanding["entities"]] == [("order_id", "202611150001")]


async def test_thanks_and_goodbye(client: TestClient[object, object]) -> None:
    chat = Chat(client, unique_sender())
    assert "不客氣" in (await chat.texts("多谢晒"))[0]  # Cantonese: answered in Hong Kong Traditional
    assert "祝您生活愉快" in (await chat.texts("拜拜"))[0]
