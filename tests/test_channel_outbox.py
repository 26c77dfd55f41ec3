"""The outbox: replies leave through each channel's sender, with backoff, in order, surviving restarts."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import ClassVar

import pytest

from channels.base import DeliveryFailed, OutputChannel
from gateway.outbox import OutboxDispatcher, RetryPolicy
from store import Message, OutboundMessage
from store.media import MediaRejected, MediaStore
from store.mongo import ConversationStore

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 60


class Clock:
    def __init__(self) -> None:
        self.ms = 1_000_000

    def __call__(self) -> int:
        return self.ms


class FlakySender(OutputChannel):
    """Fails while ``down``; records what it delivered."""

    name: ClassVar[str] = "fake"

    def __init__(self, name: str = "fake") -> None:
        self.name = name  # type: ignore[misc]
        self.down = False
        self.permanent = False
        self.sent: list[str] = []

    async def send(self, message: Message) -> str | None:
        if self.down:
            raise DeliveryFailed("connection refused", permanent=self.permanent)
        self.sent.append(message.text)
        return f"p-{len(self.sent)}"


async def queue(store: ConversationStore, channel: str, text: str, recipient: str = "r1") -> Message:
    return await store.record_outbound(
        OutboundMessage(channel=channel, recipient_id=recipient, conversation_id="c1", text=text),
        customer_id="u1",
        sequence=0,
    )


POLICY = RetryPolicy(base_delay=2.0, max_delay=60.0, max_attempts=4)


async def test_failed_send_is_retried_with_exponential_backoff(store: ConversationStore) -> None:
    sender, clock = FlakySender(), Clock()
    outbox = OutboxDispatcher(store, [sender], POLICY, clock_ms=clock)
    reply = await queue(store, "fake", "您好")

    sender.down = True
    waits = []
    for _ in range(3):
        assert await outbox.deliver_due("fake") == 0
        [(message, due)] = await store.pending_outbound("fake")
        waits.append(due - clock.ms)
        assert await outbox.deliver_due("fake") == 0, "not tried again before it is due"
        clock.ms = due
    assert waits == [2000, 4000, 8000]
    assert message.attempts == 3

    sender.down = False
    assert await outbox.deliver_due("fake") == 1
    assert sender.sent == ["您好"]
    stored = await store.get_message(reply.id)
    assert stored is not None and stored.delivered and not stored.failed
    assert await store.pending_outbound("fake") == []


async def test_a_restarted_dispatcher_resumes_undelivered_replies(store: ConversationStore) -> None:
    clock = Clock()
    crashed = FlakySender()
    crashed.down = True
    await queue(store, "fake", "first")
    await OutboxDispatcher(store, [crashed], POLICY, clock_ms=clock).deliver_due("fake")
    await queue(store, "fake", "second")  # written, then the process died before sending

    clock.ms += 2000
    restarted = FlakySender()  # a new process: nothing carried over but the store
    assert await OutboxDispatcher(store, [restarted], POLICY, clock_ms=clock).deliver_due("fake") == 2
    assert restarted.sent == ["first", "second"]


async def test_a_reply_another_sender_may_have_sent_is_not_sent_again_until_its_claim_is_stale(
    store: ConversationStore,
) -> None:
    """A sender whose lease ran out (its store calls too slow) may have handed a reply to the
    provider without recording it yet: the process that took over waits for it."""
    clock = Clock()
    reply = await queue(store, "fake", "您好")
    assert await store.claim_for_sending([reply.id], "slow-process", clock.ms, 60_000)
    sender = FlakySender()
    outbox = OutboxDispatcher(store, [sender], POLICY, clock_ms=clock)
    assert await outbox.deliver_due("fake") == 0 and sender.sent == []
    clock.ms += 60_001  # the other process never recorded it: it died
    assert await outbox.deliver_due("fake") == 1 and sender.sent == ["您好"]


async def test_replies_to_one_recipient_keep_their_order(store: ConversationStore) -> None:
    sender, clock = FlakySender(), Clock()
    outbox = OutboxDispatcher(store, [sender], POLICY, clock_ms=clock)
    await queue(store, "fake", "one")
    sender.down = True
    await outbox.deliver_due("fake")
    await queue(store, "fake", "two")
    await queue(store, "fake", "other", recipient="r2")
    sender.down = False
    assert await outbox.deliver_due("fake") == 1
    assert sender.sent == ["other"], "'two' waits behind 'one', another recipient does not"
    clock.ms += 2000
    assert await outbox.deliver_due("fake") == 2
    assert sender.sent == ["other", "one", "two"]


async def test_a_channel_that_is_down_does_not_hold_up_the_others(store: ConversationStore) -> None:
    broken, working = FlakySender("broken"), FlakySender("working")
    broken.down = True
    outbox = OutboxDispatcher(store, [broken, working], POLICY, poll_interval=0.05)
    await queue(store, "broken", "stuck")
    await queue(store, "working", "goes out")
    await outbox.start()
    try:
        outbox.wake()
        for _ in range(100):
            if working.sent:
                break
            await asyncio.sleep(0.02)
        assert working.sent == ["goes out"]
        assert [m.text for m, _ in await store.pending_outbound("broken")] == ["stuck"]
    finally:
        await outbox.stop()


async def test_permanent_failures_and_exhausted_retries_are_given_up_and_logged(store: ConversationStore) -> None:
    sender, clock = FlakySender(), Clock()
    outbox = OutboxDispatcher(store, [sender], POLICY, clock_ms=clock)
    sender.down = sender.permanent = True
    blocked = await queue(store, "fake", "bot was blocked")
    await outbox.deliver_due("fake")
    stored = await store.get_message(blocked.id)
    assert stored is not None and stored.failed and stored.attempts == 1

    sender.permanent = False
    tired = await queue(store, "fake", "provider down for good")
    for _ in range(POLICY.max_attempts):
        await outbox.deliver_due("fake")
        clock.ms += 120_000
    stored = await store.get_message(tired.id)
    assert stored is not None and stored.failed and stored.attempts == POLICY.max_attempts
    assert await store.events.count_documents({"name": "delivery_failed"}) == 2
    assert await store.pending_outbound("fake") == []


def test_backoff_is_capped_and_honours_retry_after() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=30.0)
    assert [policy.delay(n) for n in (1, 2, 3, 6, 10)] == [1.0, 2.0, 4.0, 30.0, 30.0]
    assert policy.delay(1, retry_after=7.0) == 7.0


async def test_media_is_stored_once_by_content_hash(store: ConversationStore, tmp_path: Path) -> None:
    media = MediaStore(tmp_path / "media", max_bytes=1000)
    media.use_collection(store.media)
    first = await media.save(JPEG, "application/octet-stream", "a.jpg")
    second = await media.save(JPEG, "image/jpeg", "b.jpg")
    assert first.media_id == second.media_id and first.kind == "image" and first.content_type == "image/jpeg"
    assert first.media_id is not None
    assert await media.read(first.media_id) == JPEG
    assert media.path_of(first.media_id).parent.name == first.media_id[:2]
    assert await store.media.count_documents({}) == 1
    assert list((tmp_path / "media").rglob(".incoming-*")) == []


async def test_media_over_the_limits_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    media = MediaStore(tmp_path / "media", max_bytes=100)
    with pytest.raises(MediaRejected) as too_large:
        await media.save(JPEG + b"\x00" * 100, "image/jpeg")
    assert too_large.value.reason == "too_large"
    with pytest.raises(MediaRejected) as wrong_type:
        await media.save(b"MZ\x90\x00 not a photo", "image/jpeg")  # the bytes are not a JPEG
    assert wrong_type.value.reason == "type_not_allowed"
    assert not (tmp_path / "media").exists()


async def test_a_sender_bug_is_backed_off_like_a_failure(store: ConversationStore) -> None:
    class Broken(FlakySender):
        async def send(self, message: Message) -> str | None:
            raise RuntimeError("bug")

    clock = Clock()
    outbox = OutboxDispatcher(store, [Broken()], POLICY, clock_ms=clock)
    await queue(store, "fake", "x")
    await outbox.deliver_due("fake")
    [(message, due)] = await store.pending_outbound("fake")
    assert message.attempts == 1 and due == clock.ms + 2000


async def test_a_retry_after_pauses_the_whole_channel(store: ConversationStore) -> None:
    class RateLimited(FlakySender):
        async def send(self, message: Message) -> str | None:
            if self.down:
                raise DeliveryFailed("429 Too Many Requests", retry_after=30.0)
            return await super().send(message)

    sender, clock = RateLimited(), Clock()
    outbox = OutboxDispatcher(store, [sender], POLICY, clock_ms=clock)
    await queue(store, "fake", "to r1")
    await queue(store, "fake", "to r2", recipient="r2")
    sender.down = True
    assert await outbox.deliver_due("fake") == 0
    sender.down = False
    clock.ms += 29_000
    assert await outbox.deliver_due("fake") == 0 and sender.sent == [], "r2 waits too: the limit is the bot's"
    clock.ms += 1_000
    assert await outbox.deliver_due("fake") == 2
    assert sender.sent == ["to r1", "to r2"]
