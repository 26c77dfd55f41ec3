"""The outbox dispatcher: sends stored replies through each channel's sender, with retries.

Replies are written to the store by the turn pipeline before anyone sends them; this module
only moves them out. Each channel has its own loop, so a channel that is down waits out its own
backoff without holding up the others. A reply that failed is retried after
``base_delay * 2**(attempts-1)`` seconds (capped, or longer if the provider asked), until
``max_attempts``; then it is marked failed and logged. Replies to one recipient go out in order:
while the oldest is waiting for a retry, the later ones wait too. A provider that says how long
to wait (a 429's ``retry_after``) pauses the whole channel that long: its rate limits are the
bot's, not one chat's, and every send inside the pause would only be refused again. Nothing
lives only in memory, so a restarted dispatcher resumes whatever was not delivered. The one
exception: a reply the provider took just as the store became unreachable cannot be marked
sent; it is remembered and marked before the channel's next pass sends anything, so a store
outage does not send it twice (a process that dies in that moment too may).

With several gateway processes on one store, one process at a time sends for each channel: it
holds the channel's lease (``outbox:<channel>``) and renews it as it goes, so replies to a
recipient still leave in order and once; if it dies another takes over when the lease runs out.
Every process watches for stored replies (:meth:`reply_stored`, fed by a change stream) and
wakes the channel's loop, so a reply written by one process is sent at once by the holder.
Channels that deliver to connections a process holds (app IM) are the exception: each process
delivers to its own connections, without a lease, and an offline recipient is no failure.

Knows senders only through :class:`channels.base.OutputChannel`; no wire formats, no dialogue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from channels.base import DeliveryFailed, OutputChannel
from store import Event, Message
from store.changes import follow_changes
from store.leases import HeldLease, Leases, process_identity
from store.mongo import ConversationStore, message_from_doc

log = logging.getLogger(__name__)


LOCAL_CATCH_UP_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base_delay: float = 2.0
    max_delay: float = 600.0
    max_attempts: int = 12
    send_timeout: float = 30.0

    def delay(self, attempts: int, retry_after: float | None = None) -> float:
        """Seconds to wait after the ``attempts``-th failure."""
        backoff: float = min(self.base_delay * 2.0 ** max(attempts - 1, 0), self.max_delay)
        return max(backoff, retry_after or 0.0)


def _now_ms() -> int:
    return int(time.time() * 1000)


class OutboxDispatcher:
    def __init__(
        self,
        store: ConversationStore,
        senders: list[OutputChannel],
        policy: RetryPolicy | None = None,
        *,
        poll_interval: float = 1.0,
        clock_ms: Callable[[], int] = _now_ms,
        leases: Leases | None = None,
        lease_seconds: float = 30.0,
    ) -> None:
        self.store = store
        self.senders = {sender.name: sender for sender in senders}
        self.policy = policy or RetryPolicy()
        self.poll_interval = poll_interval
        self.clock_ms = clock_ms
        self._wake = {name: asyncio.Event() for name in self.senders}
        self._paused_until_ms: dict[str, int] = {}  # a provider's retry_after, per channel
        # Sent, but the store could not be told yet: message id -> provider id, per channel.
        self._sent_unrecorded: dict[str, dict[str, str | None]] = {name: {} for name in self.senders}
        self._tasks: list[asyncio.Task[None]] = []
        self._following = False
        self.owner = leases.owner if leases is not None else process_identity()
        self.claim_stale_ms = int(2 * lease_seconds * 1000)
        """Another sender's claim on a reply older than this is from a process that died."""
        # No leases: this is the only dispatcher on the store (tests, one-off tools).
        self._leases = {
            name: HeldLease(leases, f"outbox:{name}", lease_seconds)
            for name, sender in self.senders.items()
            if leases is not None and not sender.local_delivery
        }
        # A send must end well before the lease could pass to another process.
        self._send_timeout = min(self.policy.send_timeout, lease_seconds / 2) if leases else self.policy.send_timeout

    async def start(self, *, follow_store: bool = False) -> None:
        """Start each channel's loop; with ``follow_store``, also follow replies stored by any
        gateway process (a change stream), instead of finding them at the next poll."""
        for name, sender in self.senders.items():
            await sender.start()
            self._tasks.append(asyncio.create_task(self._run(name), name=f"outbox-{name}"))
        if follow_store and self.senders:
            self._following = True
            opened = asyncio.Event()
            self._tasks.append(asyncio.create_task(self._follow_stored_replies(opened), name="outbox-follow"))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(opened.wait(), timeout=5)

    async def _follow_stored_replies(self, opened: asyncio.Event) -> None:
        async def on_insert(change: Mapping[str, Any]) -> None:
            doc = change.get("fullDocument")
            if doc:
                await self.reply_stored(message_from_doc(doc))

        async def look_again() -> None:  # what was stored while the stream was down
            self.wake()

        await follow_changes(
            self.store.db,
            "messages",
            on_insert,
            opened=opened,
            on_reopen=look_again,
            full_document="default",
            pipeline=[{"$match": {"operationType": "insert", "fullDocument.direction": "out"}}],
        )

    def wake(self, channel: str | None = None) -> None:
        """New replies are in the outbox: look now instead of at the next poll. (While following
        the store, connected recipients get replies from :meth:`reply_stored`; their channels'
        catch-up passes are woken only by ``wake()`` for all channels, after a stream gap.)"""
        for name, event in self._wake.items():
            if channel is None or (channel == name and not (self._following and self.senders[name].local_delivery)):
                event.set()

    async def reply_stored(self, message: Message) -> None:
        """A reply was stored by some gateway process: connected recipients get it now, other
        channels' loops look now instead of at their next poll."""
        sender = self.senders.get(message.channel)
        if sender is None or message.delivered:
            return
        if sender.local_delivery:
            if message.recipient_id in sender.connected_recipients():
                await self._deliver_locally(sender, [message])
        else:
            self.wake(message.channel)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for lease in self._leases.values():  # another process may take over at once
            try:
                await lease.release()
            except Exception as exc:
                log.warning("releasing %s failed: %s", lease.job, exc)
        for sender in self.senders.values():
            try:
                await sender.close()
            except Exception:
                log.exception("closing the %s sender failed", sender.name)

    async def _run(self, channel: str) -> None:
        wake = self._wake[channel]
        lease = self._leases.get(channel)
        while True:
            wake.clear()
            try:
                # What the provider took before the store went away is recorded even if another
                # process holds the lease by now, so that one does not send it again.
                await self._record_sent(channel)
                if lease is None or await lease.check():
                    await self.deliver_due(channel)
            except Exception:  # e.g. the store is down: try again at the next poll
                log.exception("outbox pass for %s failed", channel)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), self._interval(channel))

    def _interval(self, channel: str) -> float:
        if self._following and self.senders[channel].local_delivery:
            return max(self.poll_interval, LOCAL_CATCH_UP_SECONDS)  # a safety net: pushes come from the stream
        return self.poll_interval

    async def deliver_due(self, channel: str) -> int:
        """One pass over the channel's undelivered replies; returns how many went out."""
        sender = self.senders[channel]
        if sender.local_delivery:
            return await self._deliver_to_connected(sender)
        await self._record_sent(channel)  # raises while the store is still unreachable: send nothing
        if self._paused_until_ms.get(channel, 0) > self.clock_ms():
            return 0  # the provider asked us to wait
        lease = self._leases.get(channel)
        held: set[str] = set()  # recipients whose earlier reply is still waiting
        sent = 0
        for batch, next_attempt_ms in await self._batches(channel, sender.combines_replies):
            if lease is not None and not await lease.check():
                log.warning("lost the %s outbox lease mid-pass; another process sends now", channel)
                break
            first = batch[0]
            recipient = first.recipient_id or ""
            if recipient in held:
                continue
            if next_attempt_ms > self.clock_ms():
                held.add(recipient)
                continue
            if sender.combines_replies and first.in_reply_to and not await self._turn_finished(first.in_reply_to):
                held.add(recipient)  # the turn is still writing replies: send them together later
                continue
            ids = [message.id for message in batch]
            if not await self.store.claim_for_sending(ids, self.owner, self.clock_ms(), self.claim_stale_ms):
                # A sender that lost its lease may still be recording this one: not twice.
                log.info("reply %s of %s is being sent by another process; later", first.id, channel)
                held.add(recipient)
                continue
            try:
                async with asyncio.timeout(self._send_timeout):
                    if sender.combines_replies:
                        provider_id = await sender.send_combined(batch)
                    else:
                        provider_id = await sender.send(first)
            except Exception as exc:  # DeliveryFailed, a timeout, or a sender bug: all get the backoff
                if not isinstance(exc, DeliveryFailed | TimeoutError):
                    log.exception("the %s sender failed unexpectedly", channel)
                held.add(recipient)
                await self.store.release_sending(ids, self.owner)
                for message in batch:
                    await self._failed(message.id, message.attempts + 1, exc, message.conversation_id, channel)
                if isinstance(exc, DeliveryFailed) and exc.retry_after:
                    self._paused_until_ms[channel] = self.clock_ms() + int(exc.retry_after * 1000)
                    break
                continue
            self._sent_unrecorded[channel].update((message.id, provider_id) for message in batch)
            await self._record_sent(channel)
            sent += len(batch)
        return sent

    async def _deliver_to_connected(self, sender: OutputChannel) -> int:
        """Replies not yet delivered to recipients connected to this process (missed while a
        change stream was down, or stored before they connected here)."""
        recipients = sender.connected_recipients()
        if not recipients:
            return 0
        pending = [m for m, _ in await self.store.pending_outbound(sender.name, recipients=sorted(recipients))]
        return await self._deliver_locally(sender, pending)

    async def _deliver_locally(self, sender: OutputChannel, messages: list[Message]) -> int:
        sent = 0
        for message in messages:
            try:
                provider_id = await sender.send(message)
            except DeliveryFailed as exc:
                if not exc.offline:
                    log.info("local delivery of %s via %s failed: %s", message.id, sender.name, exc)
                continue  # offline: the channel replays it when the recipient is back
            await self.store.mark_sent(message.id, provider_id)
            sent += 1
        return sent

    async def _record_sent(self, channel: str) -> None:
        """Mark sent what the provider took (kept until the store has it)."""
        unrecorded = self._sent_unrecorded[channel]
        for message_id, provider_id in list(unrecorded.items()):
            await self.store.mark_sent(message_id, provider_id)
            del unrecorded[message_id]

    async def _batches(self, channel: str, combine: bool) -> list[tuple[list[Message], int]]:
        """Due replies in order; with ``combine``, one turn's consecutive replies form one batch."""
        batches: list[tuple[list[Message], int]] = []
        for message, next_attempt_ms in await self.store.pending_outbound(channel):
            if combine and batches and message.in_reply_to:
                last, last_due = batches[-1]
                if last[0].in_reply_to == message.in_reply_to and last[0].recipient_id == message.recipient_id:
                    last.append(message)
                    batches[-1] = (last, max(last_due, next_attempt_ms))
                    continue
            batches.append(([message], next_attempt_ms))
        return batches

    async def _turn_finished(self, inbound_id: str) -> bool:
        inbound = await self.store.get_message(inbound_id)
        return inbound is None or inbound.processed

    async def _failed(self, message_id: str, attempts: int, exc: Exception, conversation_id: str, channel: str) -> None:
        error = str(exc) or type(exc).__name__
        if isinstance(exc, DeliveryFailed) and exc.offline:
            # Not an attempt: look again much later; the channel replays it when the customer is back.
            await self.store.schedule_retry(
                message_id, attempts - 1, self.clock_ms() + int(self.policy.max_delay * 1000), error
            )
            return
        permanent = isinstance(exc, DeliveryFailed) and exc.permanent
        if permanent or attempts >= self.policy.max_attempts:
            log.error("giving up on reply %s via %s after %d attempts: %s", message_id, channel, attempts, error)
            await self.store.mark_send_failed(message_id, attempts, error)
            await self.store.log_event(
                Event(
                    name="delivery_failed",
                    conversation_id=conversation_id,
                    channel=channel,
                    data={"message_id": message_id, "attempts": attempts, "error": error[:500]},
                )
            )
            return
        retry_after = exc.retry_after if isinstance(exc, DeliveryFailed) else None
        delay = self.policy.delay(attempts, retry_after)
        log.warning(
            "reply %s via %s failed (attempt %d), retry in %.1fs: %s", message_id, channel, attempts, delay, error
        )
        await self.store.schedule_retry(message_id, attempts, self.clock_ms() + int(delay * 1000), error)
