"""Store leases: one holder at a time, taken over when they run out, handed back on release; and
what is built on them: receiving that only one gateway process may do (Telegram getUpdates). The
turn lease kept on a conversation's own document keeps the same rules."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from telegram import Bot

from channels.base import InputChannel
from channels.telegram import TelegramInput, make_bot
from gateway.receivers import ExclusiveReceivers
from store import InboundMessage, Message
from store.leases import Leases, LeaseUnavailable
from store.media import MediaStore
from store.mongo import FREE_TURN_LEASE, ConversationStore
from tests.processes import eventually
from tests.telegram_standin import TOKEN, BotApiStandIn, private_update


async def test_one_holder_until_release_or_expiry(store: ConversationStore) -> None:
    first, second = Leases(store.db, "first"), Leases(store.db, "second")
    assert await first.try_acquire("job", ttl=0.5)
    assert not await second.try_acquire("job", ttl=0.5)
    assert await first.try_acquire("job", ttl=0.5), "the holder renews"
    assert await second.holder("job") == "first"
    await asyncio.sleep(0.6)
    assert await second.holder("job") is None
    assert await second.try_acquire("job", ttl=5), "an expired lease is taken over"
    assert not await first.try_acquire("job", ttl=5)
    await first.release("job")  # not the holder: changes nothing
    assert await first.holder("job") == "second"
    await second.release("job")
    assert await first.try_acquire("job", ttl=5)


async def test_hold_serialises_and_renews_while_held(store: ConversationStore) -> None:
    first, second = Leases(store.db, "first"), Leases(store.db, "second")
    order: list[str] = []

    async def work(leases: Leases, name: str, seconds: float) -> None:
        async with leases.hold("turn:c1", ttl=0.3, wait=5):
            order.append(f"{name} in")
            await asyncio.sleep(seconds)  # longer than the ttl: the renewal keeps it
            order.append(f"{name} out")

    holder = asyncio.create_task(work(first, "first", 0.8))
    await asyncio.sleep(0.05)
    await work(second, "second", 0)
    await holder
    assert order == ["first in", "first out", "second in", "second out"]

    with pytest.raises(LeaseUnavailable):
        async with first.hold("busy", ttl=5, wait=5), second.hold("busy", ttl=5, wait=0.2):
            pass


async def test_the_turn_lease_on_a_conversation_has_one_holder_until_handed_back_or_expired(
    store: ConversationStore,
) -> None:
    """Taking it reads the conversation (an agent's write without the lease is seen, never undone);
    the turn's write hands it back; a dead holder's lease runs out and is taken over, and its late
    write still lands but hands back nothing it no longer holds."""
    customer = await store.resolve_customer("rest", "lease-customer", {})
    conversation = await store.open_conversation(customer, "rest", "lease-customer")
    cid = conversation.id
    first = await store.take_turn_lease(cid, "first", ttl=0.5)
    assert first is not None and first.conversation is not None and first.conversation.id == cid
    assert await store.take_turn_lease(cid, "second", ttl=0.5) is None
    assert await store.renew_turn_lease(cid, "first", ttl=0.5)
    await store.set_handoff_summary(cid, {"by": "an agent, without the lease"})
    assert await store.commit_turn(cid, "m1", {"processed": True}, slots={"a": 1}, language="en", release="first")
    second = await store.take_turn_lease(cid, "second", ttl=0.3)
    assert second is not None and second.conversation is not None
    assert second.conversation.slots == {"a": 1} and second.conversation.language == "en"
    assert second.conversation.handoff_summary == {"by": "an agent, without the lease"}
    assert second.last_turn == {"message_id": "m1", "processed": {"processed": True}}

    await asyncio.sleep(0.4)  # second died holding it
    assert not await store.renew_turn_lease(cid, "first", ttl=5)
    third = await store.take_turn_lease(cid, "third", ttl=5)
    assert third is not None, "an expired lease is taken over"
    assert not await store.renew_turn_lease(cid, "second", ttl=5), "lost: no renewal takes it back"
    assert not await store.commit_turn(cid, "m2", {"processed": True}, slots={"b": 2}, language=None, release="second")
    await store.release_turn_lease(cid, "second")  # not the holder: changes nothing
    assert await store.take_turn_lease(cid, "first", ttl=5) is None, "third still holds it"
    doc = await store.conversations.find_one({"_id": cid})
    assert doc is not None and doc["slots"] == {"b": 2} and doc["turn_owner"] == "third"
    await store.release_turn_lease(cid, "third")
    assert await store.take_turn_lease(cid, "first", ttl=5) is not None

    # A conversation stored before conversations held the lease is taken by compare-and-set.
    await store.conversations.update_one({"_id": cid}, {"$unset": FREE_TURN_LEASE})
    assert await store.take_turn_lease(cid, "first", ttl=5) is not None
    assert await store.take_turn_lease(cid, "second", ttl=5) is None
    assert await store.take_turn_lease(cid, None, ttl=5) is not None, "the only process only reads"


@pytest_asyncio.fixture
async def bots(standin: BotApiStandIn) -> AsyncIterator[tuple[Bot, Bot]]:
    pair = (make_bot(TOKEN, standin.base_url), make_bot(TOKEN, standin.base_url))
    yield pair
    for bot in pair:
        await bot.shutdown()


async def test_one_process_polls_telegram_and_another_takes_over(
    store: ConversationStore, standin: BotApiStandIn, bots: tuple[Bot, Bot], tmp_path: Path
) -> None:
    media = MediaStore(tmp_path / "media")
    media.use_collection(store.media)

    async def accept(message: InboundMessage) -> list[Message]:
        await store.accept_inbound(message)
        return []

    def gateway_process(owner: str, bot: Bot) -> ExclusiveReceivers:
        channel: InputChannel = TelegramInput(bot, media, webhook_secret=None, polling=True, poll_timeout=1)
        return ExclusiveReceivers(Leases(store.db, owner), [channel], lambda _: accept, lease_seconds=0.6)

    a, b = gateway_process("a", bots[0]), gateway_process("b", bots[1])
    await a.start()
    await b.start()
    try:
        assert (a.running(), b.running()) == ({"telegram"}, set())
        standin.updates = [private_update(300, 4242, text="第一条")]
        await eventually(lambda: _count(store, 1), 10)
        await a.stop()  # hands the lease back: b polls from its next check
        await eventually(lambda: asyncio.sleep(0, b.running() == {"telegram"}), 10)
        standin.updates = [private_update(301, 4242, text="第二条")]
        await eventually(lambda: _count(store, 2), 10)
        assert a.running() == set()
    finally:
        await a.stop()
        await b.stop()
    texts = sorted([m["text"] async for m in store.messages.find({"channel": "telegram"})])
    assert texts == ["第一条", "第二条"]


async def _count(store: ConversationStore, n: int) -> bool:
    return await store.count_messages(channel="telegram") == n
