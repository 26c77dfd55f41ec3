"""The conversation store on the real embedded MongoDB-protocol server."""

from __future__ import annotations

import asyncio
from pathlib import Path

from store import InboundMessage, OutboundMessage
from store.embedded import EmbeddedMongo
from store.mongo import ConversationStore, inbound_key


def inbound(channel: str = "rest", sender: str = "alice", mid: str = "m1", **extra: object) -> InboundMessage:
    return InboundMessage(channel=channel, sender_id=sender, channel_message_id=mid, text="你好", **extra)


async def test_a_redelivered_message_is_stored_once(store: ConversationStore) -> None:
    first = await store.accept_inbound(inbound())
    again = await store.accept_inbound(inbound())
    assert not first.duplicate and again.duplicate
    assert again.message.id == first.message.id
    assert await store.count_messages(direction="in") == 1


async def test_an_accept_takes_the_turn_lease_with_its_read_of_the_conversation(store: ConversationStore) -> None:
    """Taken when free (the turn's own taking saved), only read when another holds it, and handed
    back when the message turns out to be stored already."""
    await store.accept_inbound(inbound(sender="lessee", mid="m0"))  # the sender's conversation opens
    first = await store.accept_inbound(inbound(sender="lessee", mid="m1"), turn_lease=("a", 5))
    assert first.lease is not None and first.lease.conversation is not None
    assert first.lease.conversation.id == first.conversation.id
    held = await store.accept_inbound(inbound(sender="lessee", mid="m2"), turn_lease=("b", 5))
    assert held.lease is None and held.conversation.id == first.conversation.id, "stored, not leased"
    await store.release_turn_lease(first.conversation.id, "a")

    # The key lost (stored before keys existed): the insert finds the message, the lease goes back.
    await store.message_keys.delete_one({"_id": inbound_key("rest", "m1")})
    again = await store.accept_inbound(inbound(sender="lessee", mid="m1"), turn_lease=("c", 5))
    assert again.duplicate and again.lease is None and again.message.id == first.message.id
    doc = await store.conversations.find_one({"_id": first.conversation.id})
    assert doc is not None and (doc["turn_owner"], doc["turn_until_ms"]) == ("", 0)


async def test_concurrent_redeliveries_are_stored_once(store: ConversationStore) -> None:
    receipts = await asyncio.gather(*(store.accept_inbound(inbound(mid="same")) for _ in range(8)))
    assert len({r.message.id for r in receipts}) == 1
    assert sum(not r.duplicate for r in receipts) == 1
    assert await store.count_messages(direction="in") == 1
    assert await store.customers.count_documents({}) == 1
    assert await store.conversations.count_documents({}) == 1


async def test_the_same_id_on_another_channel_is_another_message(store: ConversationStore) -> None:
    await store.accept_inbound(inbound(channel="rest"))
    await store.accept_inbound(inbound(channel="telegram"))
    assert await store.count_messages(direction="in") == 2


async def test_a_phone_number_links_channel_identities_to_one_customer(store: ConversationStore) -> None:
    on_rest = await store.accept_inbound(inbound(channel="rest", sender="app-7", profile={"phone": "13800138000"}))
    on_telegram = await store.accept_inbound(
        inbound(channel="telegram", sender="5551234", mid="t1", profile={"phone": "13800138000"})
    )
    assert on_rest.customer.id == on_telegram.customer.id
    assert on_telegram.customer.identities == {"rest": "app-7", "telegram": "5551234", "phone": "13800138000"}
    assert on_rest.conversation.id != on_telegram.conversation.id, "one conversation per channel identity"


async def test_messages_of_a_sender_share_one_open_conversation(store: ConversationStore) -> None:
    a = await store.accept_inbound(inbound(mid="a"))
    b = await store.accept_inbound(inbound(mid="b"))
    assert a.conversation.id == b.conversation.id
    assert [m.id for m in await store.history(a.conversation.id)] == [a.message.id, b.message.id]


async def test_queue_positions_follow_hand_off_order(store: ConversationStore) -> None:
    conversations = [(await store.accept_inbound(inbound(sender=f"s{i}", mid=f"m{i}"))).conversation for i in range(3)]
    for conversation in conversations:
        await store.hand_to_queue(conversation.id, "test")
    assert [await store.queue_position(c.id) for c in conversations] == [1, 2, 3]
    waiting = await store.waiting_conversations()
    assert [c.id for c in waiting] == [c.id for c in conversations]


async def test_a_reply_is_stored_once_per_turn_and_sequence(store: ConversationStore) -> None:
    receipt = await store.accept_inbound(inbound())
    reply = OutboundMessage(
        channel="rest",
        recipient_id="alice",
        conversation_id=receipt.conversation.id,
        text="您好",
        in_reply_to=receipt.message.id,
    )
    first = await store.record_outbound(reply, receipt.customer.id, sequence=0)
    again = await store.record_outbound(reply, receipt.customer.id, sequence=0)
    assert first.id == again.id
    assert [m.text for m in await store.replies_to(receipt.message.id)] == ["您好"]


async def test_a_turns_replies_are_stored_in_one_write_and_once_when_the_turn_runs_again(
    store: ConversationStore,
) -> None:
    receipt = await store.accept_inbound(inbound())
    replies = [
        OutboundMessage(
            channel="rest", recipient_id="alice", conversation_id=receipt.conversation.id, text=text,
            in_reply_to=receipt.message.id,
        )
        for text in ("您好", "请问订单号是多少？")
    ]  # fmt: skip
    first = await store.record_replies(replies, receipt.customer.id)
    # A crash after the first reply was stored: the re-run finds it and stores the second.
    await store.messages.delete_one({"_id": first[1].id})
    again = await store.record_replies(replies, receipt.customer.id)
    assert again[0].id == first[0].id and [m.text for m in again] == ["您好", "请问订单号是多少？"]
    assert [m.text for m in await store.replies_to(receipt.message.id)] == ["您好", "请问订单号是多少？"]
    assert await store.record_replies([], receipt.customer.id) == []


async def test_data_survives_a_restart_of_the_embedded_server(tmp_path: Path) -> None:
    server = EmbeddedMongo(tmp_path / "mongo")
    await server.start()
    store = ConversationStore.from_uri(server.uri)
    await store.ensure_indexes()
    receipt = await store.accept_inbound(inbound(mid="persist-me"))
    await store.close()
    await server.stop()

    restarted = EmbeddedMongo(tmp_path / "mongo")
    await restarted.start()
    store = ConversationStore.from_uri(restarted.uri)
    try:
        message = await store.get_message(receipt.message.id)
        assert message is not None and message.text == "你好"
    finally:
        await store.close()
        await restarted.stop()
