"""A message accepted before a crash is answered after the restart; none is lost or doubled."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pymongo.errors import AutoReconnect

from gateway import Gateway, GatewayBuilder, Settings, build_app
from gateway.turns import MAX_TURN_STARTS
from nlu import NluClient, ParseResult, RasaNluClient
from store import InboundMessage
from store.mongo import ConversationStore
from tests.conftest import DEMO_ORDERS
from tests.helpers import Chat, post_rest


async def test_unprocessed_messages_are_answered_on_start(
    settings: Settings, store: ConversationStore, nlu: RasaNluClient
) -> None:
    # A gateway accepted (persisted) this message, then died before answering it.
    accepted = await store.accept_inbound(
        InboundMessage(
            channel="rest",
            sender_id="crash-victim",
            channel_message_id="crash-victim:m-1",
            text="查一下订单202611150001",
        )
    )
    assert await store.unprocessed_inbound() != []

    gateway = GatewayBuilder(settings).store(store).nlu(nlu).build()
    await gateway.seed_orders(DEMO_ORDERS)
    async with TestClient(TestServer(build_app(gateway))) as http:
        assert await store.unprocessed_inbound() == []
        replies = await store.replies_to(accepted.message.id)
        assert "202611150001" in replies[0].text and "已发货" in replies[0].text
        assert await store.count_messages(direction="out", delivered=False) == len(replies), "no one got them yet"

        # The customer's client retries the delivery it never got an answer to.
        chat = Chat(http, "crash-victim")
        retry = await chat.texts("查一下订单202611150001", message_id="m-1")
        assert retry == [r.text for r in replies]
        assert await store.count_messages(direction="out", delivered=False) == 0
        # A message stored by the turn that runs it carries its first start; it is counted once.
        await chat.texts("你好", message_id="m-2")
        fresh = await store.messages.find_one({"channel_message_id": "crash-victim:m-2"})
        assert fresh is not None and fresh["turn_starts"] == 1 and fresh["processed"]

    assert await store.count_messages(direction="in") == 2
    assert await store.count_messages(direction="out", in_reply_to=accepted.message.id) == len(replies)
    assert await store.events.count_documents({"name": "self_service_completed"}) == 1


async def stopping_after_commit(
    settings: Settings, store: ConversationStore, nlu: RasaNluClient, monkeypatch: pytest.MonkeyPatch
) -> tuple[Gateway, asyncio.Event]:
    """A gateway whose turns stop after writing their conversation, before marking the message
    processed, while the returned event is set (clear it to let them finish)."""
    gateway = GatewayBuilder(settings).store(store).nlu(nlu).build()
    await gateway.seed_orders(DEMO_ORDERS)
    finish_turn = store.finish_turn
    stopping = asyncio.Event()
    stopping.set()

    async def stops_first(message_id: str, processed: dict[str, Any]) -> None:
        if stopping.is_set():
            raise AutoReconnect("the process stopped here")
        await finish_turn(message_id, processed)

    monkeypatch.setattr(store, "finish_turn", stops_first)
    return gateway, stopping


async def test_a_turn_stopped_after_writing_its_conversation_is_finished_not_run_again(
    settings: Settings, store: ConversationStore, nlu: RasaNluClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The turn's write of the conversation hands its lease back, before the message is marked
    processed: a process that stops in between leaves a message whose replies, slots and events
    are written. Whoever takes the lease next (recovery, a redelivery, the conversation's next
    message) marks it processed with what the turn recorded, and never runs it again."""
    gateway, stopping = await stopping_after_commit(settings, store, nlu, monkeypatch)
    async with TestClient(TestServer(build_app(gateway))) as http:
        assert gateway.turns is not None
        body = {"sender": "stopped-after-commit", "message": "查一下订单202611150001", "message_id": "m-1"}
        assert (await post_rest(http, body)).status >= 500
        (message,) = await store.unprocessed_inbound()
        replies = await store.replies_to(message.id)
        conversation = await store.conversations.find_one({"_id": message.conversation_id})
        assert conversation is not None and conversation["last_turn"]["message_id"] == message.id
        assert conversation["turn_owner"] == "", "handed back with the conversation's write"
        events = await store.events.count_documents({"conversation_id": message.conversation_id})
        assert replies and events

        stopping.clear()
        assert await gateway.turns.recover() == 1
        stored = await store.messages.find_one({"_id": message.id})
        assert stored is not None and stored["processed"] and stored["turn_starts"] == 1, "finished, not run"
        assert stored["understanding"]["intent"] and stored["acted"] is not None
        assert [r.id for r in await store.replies_to(message.id)] == [r.id for r in replies]
        assert await store.events.count_documents({"conversation_id": message.conversation_id}) == events
        # The customer's client retries: the replies given, nothing run.
        retry = await post_rest(http, body)
        assert retry.status == 200 and [r["text"] for r in await retry.json()] == [r.text for r in replies]
        assert await store.events.count_documents({"conversation_id": message.conversation_id}) == events


async def test_a_redelivery_finishes_a_turn_stopped_after_writing_its_conversation(
    settings: Settings, store: ConversationStore, nlu: RasaNluClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway, stopping = await stopping_after_commit(settings, store, nlu, monkeypatch)
    async with TestClient(TestServer(build_app(gateway))) as http:
        body = {"sender": "redelivered-after-commit", "message": "你好", "message_id": "m-1"}
        assert (await post_rest(http, body)).status >= 500
        (message,) = await store.unprocessed_inbound()
        replies = [r.text for r in await store.replies_to(message.id)]
        stopping.clear()
        retry = await post_rest(http, body)
        assert retry.status == 200 and [r["text"] for r in await retry.json()] == replies
        stored = await store.messages.find_one({"_id": message.id})
        assert stored is not None and stored["processed"] and stored["turn_starts"] == 1


class CrashingNlu(NluClient):
    """An NLU whose answer the turn cannot survive (not an outage: a bug, every time)."""

    async def parse(self, text: str, message_id: str | None = None) -> ParseResult:
        raise ValueError("the parse result cannot be read")

    async def ready(self) -> bool:
        return True


async def test_a_turn_that_always_fails_is_quarantined_after_one_retry(
    settings: Settings, store: ConversationStore
) -> None:
    """Recovery runs every few seconds in every process: a message whose turn fails each time is
    run once more, then set aside (answered with an apology, put in front of an agent) and never
    run again by any pass."""
    poison = await store.accept_inbound(
        InboundMessage(channel="rest", sender_id="poison", channel_message_id="poison:1", text="查一下订单")
    )
    gateway = GatewayBuilder(settings).store(store).nlu(CrashingNlu()).build()
    await gateway.start_store()
    await gateway.start()
    try:
        assert gateway.turns is not None
        for _ in range(3):
            await gateway.turns.recover()
        message = await store.messages.find_one({"_id": poison.message.id})
        assert message is not None
        assert message["processed"] and message["quarantined"]  # nx-27017 reads a $set boolean back as 1
        assert message["turn_starts"] == MAX_TURN_STARTS + 1, "the first run, one retry, then the quarantine"
        (notice,) = await store.replies_to(poison.message.id)
        assert "人工客服" in notice.text
        conversation = await store.get_conversation(poison.conversation.id)
        assert conversation is not None and conversation.state == "waiting_agent"
        assert await store.events.count_documents({"name": "message_quarantined"}) == 1
        assert await store.events.count_documents({"name": "handed_off", "data.reason": "message_quarantined"}) == 1
    finally:
        await gateway.stop()
