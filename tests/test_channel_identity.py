"""Identities across channels: linking by vouched phone, explicit audited merging."""

from __future__ import annotations

import pytest

from store import InboundMessage
from store.mongo import ConversationStore, MergeRefused


async def test_a_merge_moves_identities_conversations_and_messages_and_is_audited(store: ConversationStore) -> None:
    telegram = await store.accept_inbound(
        InboundMessage(channel="telegram", sender_id="777", channel_message_id="1", text="我的订单")
    )
    app = await store.accept_inbound(
        InboundMessage(
            channel="app",
            sender_id="u-42",
            channel_message_id="u-42:c1",
            text="查物流",
            profile={"email": "zhang.wei@example.com"},
        )
    )
    source, target = telegram.customer.id, app.customer.id
    assert source != target, "nothing links them yet"

    merged = await store.merge_customers(source, target, actor="agent:wang", reason="customer confirmed by phone")
    assert merged.identities == {"app": "u-42", "email": "zhang.wei@example.com", "telegram": "777"}
    assert (await store.resolve_customer("telegram", "777", {})).id == target
    assert await store.messages.count_documents({"customer_id": source}) == 0
    assert await store.conversations.count_documents({"customer_id": target}) == 2
    [event] = [e async for e in store.events.find({"name": "customers_merged"})]
    assert event["data"]["actor"] == "agent:wang" and event["data"]["identities"] == {"telegram": "777"}

    # The next Telegram message lands on the merged customer.
    again = await store.accept_inbound(
        InboundMessage(channel="telegram", sender_id="777", channel_message_id="2", text="还有一个问题")
    )
    assert again.customer.id == target

    # Re-running an interrupted merge finishes it; a finished one is not merged twice.
    assert (await store.merge_customers(source, target, actor="agent:wang", reason="retry")).id == target
    assert await store.events.count_documents({"name": "customers_merged"}) == 1


async def test_merges_that_would_lose_or_mix_identities_are_refused(store: ConversationStore) -> None:
    one = await store.resolve_customer("sms", "+8613800138000", {"phone": "13800138000"})
    two = await store.resolve_customer("sms", "+8613900139000", {"phone": "13900139000"})
    with pytest.raises(MergeRefused, match="phone"):
        await store.merge_customers(one.id, two.id, actor="agent:li", reason="?")
    with pytest.raises(MergeRefused, match="itself"):
        await store.merge_customers(one.id, one.id, actor="agent:li", reason="?")
    with pytest.raises(MergeRefused, match="unknown"):
        await store.merge_customers(one.id, "nobody", actor="agent:li", reason="?")
    assert await store.events.count_documents({"name": "customers_merged"}) == 0
    assert (await store.get_customer(one.id)) == one
