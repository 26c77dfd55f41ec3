"""The turn pipeline: channel → store → NLU → dialogue → backoffice → outbox.

Every inbound message is persisted before anything else; a message is marked processed only
after its replies are in the outbox, so a crash in between is finished by :meth:`recover` (at
start, and periodically by every process for messages left behind by one that died), and a
redelivered message gets the replies already given instead of a second turn.

Turns of one conversation run one at a time and in the order their messages were stored, even
when several gateway processes receive them: a turn holds the conversation's lease, kept on the
conversation's own document (taking it is the turn's read of the conversation, and the last turn's
write of the conversation hands it back), and first finishes any earlier message of the
conversation still unprocessed, whichever process received it. A message whose turn wrote the
conversation but was not marked processed yet (the lease is handed back before that write) is
the conversation's ``last_turn``: whoever takes the lease next marks it, and never runs it again.

A message's turn may start twice: every start is counted in the store before it runs, so a turn
that fails, runs out of its time budget, or kills its process (a message built to freeze the
reader) is retried once, then **quarantined** — kept, marked answered, the customer told, the
conversation put in front of an agent — never run again by this or any other process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.errors import PyMongoError

from backoffice import TicketDesk
from backoffice.surveys import AWAITING as SURVEYS_AWAITING
from backoffice.tickets import AWAITING as TICKETS_AWAITING
from dialogue import DialogueEngine, TurnInput, TurnOutcome
from dialogue.choices import resolve_choice
from errors import Unavailable
from gateway.channel_registry import CHANNELS
from gateway.turn_timing import TurnTimings, stage
from nlu import NluClient, NluUnavailable, ParseResult
from store import Conversation, ConversationState, Event, InboundMessage, Message, OutboundMessage
from store.leases import Leases, LeaseUnavailable, Renewal, wait_for
from store.models import Customer, utcnow
from store.mongo import ConversationStore, InboundReceipt, TakenConversation, TurnStart

log = logging.getLogger(__name__)

RESUME_WINDOW = timedelta(minutes=30)
"""How long a half-finished flow waits for the customer to continue it on another channel."""
SPOKEN = frozenset(spec.name for spec in CHANNELS if spec.spoken)
"""Channels whose replies are heard (the phone line)."""
CARRIED_SLOTS = ("form", "choices", "last_order_id", "verified_orders", "focus", "variety", "last_ticket")

MEDIA_NOTICE_SEQUENCE = 900  # after any dialogue reply in the reply-key order
TURN_LEASE_SECONDS = 10.0
"""A turn's hold on its conversation; renewed while the turn runs, so only a dead process's
lease ever expires (and then another process may carry on after this long)."""
TURN_LEASE_WAIT_SECONDS = 60.0
MAX_TURN_STARTS = 2
"""A message's turn runs at most this often (the first run and one retry); the next start
quarantines it instead, whichever process it is in."""
TURN_BUDGET_SECONDS = 30.0
"""The most one turn may take (the NLU has its own, shorter timeout); past it the turn counts as failed."""
QUARANTINE_NOTICE = {
    "zh": "抱歉，您的这条消息暂时无法自动处理，已转交人工客服查看，请稍候。",
    "en": "Sorry, we couldn't process that message automatically; it has been passed to an agent, who will reply here.",
}


class ConversationBusy(Unavailable, RuntimeError):
    """Another process kept the conversation's lease too long; the message is stored and will
    be answered (by recovery or a redelivery), but not within this request."""

    code = "conversation_busy"


class TurnLease:
    """This process's hold on a conversation's turn lease (on the conversation's document, see
    :meth:`ConversationStore.take_turn_lease`): the conversation as it was taken, renewed while
    the turns run, handed back by the write of the turn it was taken for (:meth:`commit`), or on
    leaving when that turn wrote no conversation. ``owner`` None: the only process, nothing held."""

    def __init__(
        self, store: ConversationStore, conversation_id: str, owner: str | None, taken: TakenConversation
    ) -> None:
        self.store = store
        self.conversation_id = conversation_id
        self.owner = owner
        self.last_turn = taken.last_turn
        """The conversation's last written turn as taken (its message may be unmarked)."""
        self.last_turn_id = str(self.last_turn["message_id"]) if self.last_turn is not None else None
        self.hand_back_with: str | None = None
        """The message whose turn's write of the conversation hands the lease back (the last one run)."""
        self.handed_back = False
        self._released = False
        self._conversation = taken.conversation
        self._renewal = (
            Renewal(
                f"turn:{conversation_id}",
                lambda: store.renew_turn_lease(conversation_id, owner, TURN_LEASE_SECONDS),
                TURN_LEASE_SECONDS,
            )
            if owner is not None
            else None
        )

    def conversation(self) -> Conversation | None:
        """The conversation as taken, once: the first turn under the lease runs on it, later ones
        re-read it (the turn before changed it)."""
        conversation, self._conversation = self._conversation, None
        return conversation

    async def commit(self, message_id: str, processed: dict[str, Any], *, slots: dict[str, Any], language: str) -> None:
        """The turn's write of the conversation; the lease goes back with it if this is the turn
        it was taken for (no renewal after: a late one would hold it on)."""
        release = None
        if message_id == self.hand_back_with and self.owner is not None:
            self.handed_back = True
            if self._renewal is not None:
                await self._renewal.stop()
            release = self.owner
        released = await self.store.commit_turn(
            self.conversation_id, message_id, processed, slots=slots, language=language, release=release
        )
        self._released = self._released or released

    async def release(self) -> None:
        self.handed_back = True
        if self._renewal is not None:
            await self._renewal.stop()
        if self.owner is not None and not self._released:
            self._released = True
            await self.store.release_turn_lease(self.conversation_id, self.owner)


class KeyedLocks:
    """One asyncio lock per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


class TurnProcessor:
    def __init__(
        self,
        store: ConversationStore,
        nlu: NluClient,
        dialogue: DialogueEngine,
        *,
        media_max_bytes: int = 10 * 1024 * 1024,
        tickets: TicketDesk | None = None,
        leases: Leases | None = None,
    ) -> None:
        self.store = store
        self.leases = leases
        """Turn leases shared with the other gateway processes; None: this process is the only one."""
        self.tickets = tickets
        """Told of a customer message on a conversation flagged as awaited by a ticket, so the ticket
        goes back to review."""
        self.media_max_bytes = media_max_bytes
        self.nlu = nlu
        self.dialogue = dialogue
        # Turns of one conversation run one at a time, in arrival order.
        self._locks = KeyedLocks()
        self.timings = TurnTimings()
        """The stages and store round trips of recent turns (``GET /metrics``)."""

    async def __call__(self, inbound: InboundMessage, *, replies_in_response: bool = False) -> list[Message]:
        """The message's turn. ``replies_in_response``: the channel hands the replies over in its
        response (REST), so they are stored as delivered (no outbox, no second write)."""
        owner = self.leases.owner if self.leases is not None else None
        with self.timings.turn():
            with stage("lease"):
                held = contextlib.AsyncExitStack()
                if owner is not None:
                    await held.enter_async_context(self._locks.hold(f"sender:{inbound.channel}:{inbound.sender_id}"))
            async with held:
                with stage("accept"):
                    receipt = await self.store.accept_inbound(
                        inbound, starting=True, turn_lease=(owner, TURN_LEASE_SECONDS) if owner is not None else None
                    )
                if receipt.duplicate:
                    log.info("redelivery of %s/%s", inbound.channel, inbound.channel_message_id)
                replies = await self._process(
                    receipt, replies_in_response=replies_in_response, sender_locked=owner is not None
                )
                if inbound.metadata.get("rejected_attachments"):
                    replies.append(await self._media_refused_notice(receipt))
                return replies

    async def _media_refused_notice(self, receipt: InboundReceipt) -> Message:
        """Tell the customer an attachment was refused (too large, wrong type, or no room to keep
        it); keyed so a redelivery does not say it twice."""
        conversation = receipt.conversation
        english = conversation.language == "en"
        reasons = {str(r.get("reason")) for r in receipt.message.metadata.get("rejected_attachments") or []}
        notices: list[str] = []
        if "storage_full" in reasons:  # nothing wrong with the file: we cannot keep it right now
            notices.append(
                "Sorry, we could not keep your photo just now; your message itself has arrived. "
                "Please send the photo again later."
                if english
                else "抱歉，您的照片暂时无法保存，文字消息已收到。请稍后再发送照片。"
            )
        if reasons - {"storage_full"} or not notices:
            limit = f"{self.media_max_bytes / 1024 / 1024:g}"
            notices.append(
                f"Sorry, we could not accept your file. Please send a JPG/PNG photo or a PDF of at most {limit} MB."
                if english
                else f"抱歉，您发送的文件无法接收。请发送不超过 {limit} MB 的 JPG/PNG 照片或 PDF。"
            )
        text = " ".join(notices) if english else "".join(notices)
        return await self.store.record_outbound(
            OutboundMessage(
                channel=conversation.channel,
                recipient_id=conversation.sender_id,
                conversation_id=conversation.id,
                text=text,
                in_reply_to=receipt.message.id,
                author="system",
            ),
            customer_id=receipt.customer.id,
            sequence=MEDIA_NOTICE_SEQUENCE,
        )

    async def recover(self, *, older_than: float = 0.0) -> int:
        """Finish turns whose inbound message was stored but never processed (e.g. a crash).

        ``older_than`` (seconds) leaves alone messages so recent that their turn is probably
        still running in the process that received them. A message whose turn keeps failing is
        quarantined by its second retry, so no pass runs it forever."""
        cutoff = utcnow() - timedelta(seconds=older_than)
        pending = [m for m in await self.store.unprocessed_inbound() if m.created_at <= cutoff]  # stored: aware
        recovered = 0
        for message in pending:
            receipt = await self._receipt_for(message)
            if receipt is None:
                continue
            try:
                await self._process(receipt)
                recovered += 1
            except ConversationBusy:
                log.info("message %s: its conversation is busy elsewhere; next recovery pass", message.id)
            except Exception:  # the store is down: this message waits for the next pass
                log.exception("recovering message %s failed", message.id)
        if recovered:
            log.info("recovered %d unprocessed inbound messages", recovered)
        return recovered

    async def _receipt_for(self, message: Message) -> InboundReceipt | None:
        conversation = await self.store.get_conversation(message.conversation_id)
        customer = await self.store.get_customer(message.customer_id)
        if conversation is None or customer is None:
            log.error("cannot process message %s: conversation or customer missing", message.id)
            return None
        return InboundReceipt(message, conversation, customer, duplicate=False)

    async def _process(
        self, receipt: InboundReceipt, *, replies_in_response: bool = False, sender_locked: bool = False
    ) -> list[Message]:
        """The message's turn under its conversation's lease (the one taken with the accept, if it
        was). ``sender_locked``: the caller holds the sender's lock, so this process's turns of the
        conversation wait there, not on the conversation's lock (a request holding the lease from
        its accept must never wait for a lock that recovery holds while it waits for that lease)."""
        conversation_id = receipt.message.conversation_id
        taken = receipt.lease
        if taken is not None and (taken.conversation is None or taken.conversation.id != conversation_id):
            taken = None
        try:
            with stage("lease"):
                held = contextlib.AsyncExitStack()
                if not sender_locked:
                    await held.enter_async_context(self._locks.hold(conversation_id))
                lease = await held.enter_async_context(self._conversation_lease(conversation_id, taken))
            async with held:
                lease.hand_back_with = receipt.message.id
                pending = await self.store.unprocessed_inbound_of(
                    conversation_id, through=receipt.message.id, last_turn=lease.last_turn_id
                )
                # First (before another turn writes the conversation and its last turn), a turn
                # that wrote the conversation and whose process stopped before marking it.
                last_id, last = lease.last_turn_id, lease.last_turn
                if last_id is not None and last is not None and any(m.id == last_id for m, _ in pending):
                    await self.store.finish_turn(last_id, last["processed"])
                    if last_id == receipt.message.id:
                        return await self.store.replies_to(receipt.message.id)
                # Earlier messages of this conversation another process stored but has not
                # answered yet go first, so the conversation is answered in the order it was written.
                earlier_turns = 0
                counted: TurnStart | None = None
                for message, start in pending:
                    if message.id == lease.last_turn_id:
                        continue
                    if message.id == receipt.message.id:
                        # Stored with its first start counted, and nobody started it since: it runs
                        # on that count (no second round trip to count it).
                        counted = start if receipt.start_counted and start.turn_starts == 1 else None
                        continue
                    earlier_receipt = await self._receipt_for(message)
                    if earlier_receipt is not None:
                        await self._turn(earlier_receipt, lease)
                        earlier_turns += 1
                if earlier_turns:  # they may have linked an identity to the customer
                    customer = await self.store.get_customer(receipt.customer.id) or receipt.customer
                    receipt = InboundReceipt(receipt.message, receipt.conversation, customer, receipt.duplicate)
                return await self._turn(receipt, lease, replies_in_response=replies_in_response, counted=counted)
        except LeaseUnavailable as exc:
            raise ConversationBusy(str(exc)) from exc

    @asynccontextmanager
    async def _conversation_lease(
        self, conversation_id: str, taken: TakenConversation | None = None
    ) -> AsyncIterator[TurnLease]:
        """The conversation's turn lease (``taken``: already, with the accept), else waited for;
        handed back on leaving unless a turn's write of the conversation did it already."""
        owner = self.leases.owner if self.leases is not None else None
        if taken is None or owner is None:
            taken = await wait_for(
                f"turn:{conversation_id}",
                lambda: self.store.take_turn_lease(conversation_id, owner, TURN_LEASE_SECONDS),
                wait=TURN_LEASE_WAIT_SECONDS,
            )
        lease = TurnLease(self.store, conversation_id, owner, taken)
        try:
            yield lease
        finally:
            try:
                await lease.release()
            except Exception as exc:  # the store is down: the lease simply expires
                log.warning("could not release the turn lease of %s: %s", conversation_id, exc)

    async def _turn(
        self,
        receipt: InboundReceipt,
        lease: TurnLease,
        *,
        replies_in_response: bool = False,
        counted: TurnStart | None = None,
    ) -> list[Message]:
        """The message's turn, run at most :data:`MAX_TURN_STARTS` times in all; then quarantined.
        ``counted``: this start is counted already (stored with the message)."""
        message = receipt.message
        while True:
            started, counted = counted or await self.store.start_turn(message.id), None
            if started is None or started.processed:
                return await self.store.replies_to(message.id)
            if started.turn_starts > MAX_TURN_STARTS:
                return await self._quarantine(receipt, started.turn_starts - 1)
            try:
                async with asyncio.timeout(TURN_BUDGET_SECONDS):
                    return await self._run_turn(receipt, lease, replies_in_response=replies_in_response)
            except (PyMongoError, LeaseUnavailable):
                raise  # an outage, not this message's fault: it waits, stored, for a retry or recovery
            except Exception:
                log.exception("turn of message %s failed (start %d)", message.id, started.turn_starts)
                if lease.handed_back:  # failed in its hand-back write: the next holder finishes it
                    raise

    async def _quarantine(self, receipt: InboundReceipt, failed_runs: int) -> list[Message]:
        """Set the message aside: answered with an apology, the conversation in front of an agent,
        an event for the quality team. Its turn never runs again."""
        message, conversation = receipt.message, receipt.conversation
        log.error("message %s quarantined after %d failed turn runs", message.id, failed_runs)
        english = conversation.language == "en"
        reply = await self.store.record_outbound(
            OutboundMessage(
                channel=conversation.channel,
                recipient_id=conversation.sender_id,
                conversation_id=conversation.id,
                text=QUARANTINE_NOTICE["en" if english else "zh"],
                in_reply_to=message.id,
                author="system",
            ),
            customer_id=receipt.customer.id,
            sequence=0,
        )
        await self._log(
            message, conversation.channel, "message_quarantined", {"message_id": message.id, "failed_runs": failed_runs}
        )
        current = await self.store.get_conversation(conversation.id)
        if current is not None and current.state == ConversationState.BOT:
            await self.dialogue.handoff.enqueue(
                conversation.id,
                reason="message_quarantined",
                channel=conversation.channel,
                customer_id=receipt.customer.id,
                slots=current.slots,
                details={"message_id": message.id, "failed_runs": failed_runs},
            )
        await self.store.mark_processed(message.id, quarantined=True)
        return [reply]

    async def _run_turn(
        self, receipt: InboundReceipt, lease: TurnLease, *, replies_in_response: bool = False
    ) -> list[Message]:
        message, customer = receipt.message, receipt.customer
        # As the lease was taken, or re-read: an earlier turn under this lease may have changed it.
        conversation = (
            lease.conversation() or await self.store.get_conversation(message.conversation_id) or receipt.conversation
        )
        awaiting_tickets = conversation.awaiting.get(TICKETS_AWAITING)
        if self.tickets is not None and awaiting_tickets and (message.text or message.attachments):
            await self.tickets.customer_replied(
                conversation.id, awaiting_tickets, [a.media_id for a in message.attachments if a.media_id]
            )
        if conversation.state != ConversationState.BOT:
            # With a human (or closed): store only, the bot stays silent.
            await self.store.mark_processed(message.id)
            return []

        if not conversation.slots.get("form") and set(customer.half_done_forms) - {conversation.id}:
            conversation, customer = await self._resume_from_other_channel(conversation, customer, message)
        # "2" on a channel without buttons means the second choice offered.
        text = resolve_choice(message.text, conversation.slots) or message.text
        with stage("understand"):
            understood = await self._understand(message, text) if text else Understood(None, False)
        parse, nlu_down = understood.parse, understood.nlu_down
        # The customer as accepting this message left it (a contact shared with it is linked).
        with stage("dialogue"):
            outcome = await self.dialogue.respond(
                self._turn_input(conversation, customer, message, text, parse, nlu_down)
            )
        with stage("write"):
            return await self._write(lease, conversation, customer, message, outcome, understood, replies_in_response)

    def _turn_input(
        self,
        conversation: Conversation,
        customer: Customer,
        message: Message,
        text: str,
        parse: ParseResult | None,
        nlu_down: bool,
    ) -> TurnInput:
        return TurnInput(
            conversation_id=conversation.id,
            customer_id=customer.id,
            channel=conversation.channel,
            text=text,
            parse=parse,
            slots=conversation.slots,
            language=conversation.language,
            identities=customer.identities,
            attachments=message.attachments,
            nlu_down=nlu_down,
            attachments_refused=bool(message.metadata.get("rejected_attachments")),
            raw_text=message.text,
            spoken=conversation.channel in SPOKEN,
            awaiting_surveys=conversation.awaiting.get(SURVEYS_AWAITING, {}),
        )

    async def _write(
        self,
        lease: TurnLease,
        conversation: Conversation,
        customer: Customer,
        message: Message,
        outcome: TurnOutcome,
        understood: Understood,
        replies_in_response: bool = False,
    ) -> list[Message]:
        """The turn's outcome into the store: replies (for the outbox, or delivered with the
        response), events, the conversation (slots, the turn itself, the lease handed back), then
        processed with the NLU's reading (four round trips however much happened). The
        conversation's write is the turn's commit: after it the turn is never run again."""
        replies = await self.store.record_replies(
            [
                OutboundMessage(
                    channel=conversation.channel,
                    recipient_id=conversation.sender_id,
                    conversation_id=conversation.id,
                    text=reply.text,
                    quick_replies=list(reply.quick_replies),
                    in_reply_to=message.id,
                )
                for reply in outcome.replies
            ],
            customer.id,
            delivered=replies_in_response,
        )
        had_form, has_form = bool(conversation.slots.get("form")), bool(outcome.slots.get("form"))
        flagged = conversation.id in customer.half_done_forms
        if has_form and not (had_form and flagged):  # a flow starts (or its flag went missing)
            await self.store.flag_half_done_form(customer.id, conversation.id)
        if not has_form and (had_form or flagged):
            # Before the write that ends the flow: once the lease is handed back with it, the next
            # turn (in any process) may flag the conversation again. A crash in between re-runs
            # this turn, which clears or flags again.
            await self.store.clear_half_done_form(customer.id, conversation.id)
        events = [*understood.events, *outcome.events]
        await self.store.log_events([_event(message, conversation.channel, name, data) for name, data in events])
        processed = self.store.processed_changes(
            message.id, acted=outcome.acted, variety=outcome.variety, understanding=understood.record
        )
        await lease.commit(message.id, processed, slots=outcome.slots, language=outcome.language)
        await self.store.finish_turn(message.id, processed)
        return replies

    async def _resume_from_other_channel(
        self, conversation: Conversation, customer: Customer, message: Message
    ) -> tuple[Conversation, Customer]:
        """A customer who left a flow half-done on one channel and writes on another carries on
        there: the flow's state moves to this conversation (one customer, one history). Asked only
        when another conversation of the customer is flagged (``Customer.half_done_forms``)."""
        now = utcnow()
        flagged = {k: v for k, v in customer.half_done_forms.items() if k != conversation.id}
        others = await self.store.conversations_by_id(list(flagged))
        others.sort(key=lambda c: _aware_utc(c.updated_at), reverse=True)  # the most recently active first
        for other in others:
            if (
                other.state != ConversationState.BOT
                or not other.slots.get("form")
                or now - _aware_utc(other.updated_at) > RESUME_WINDOW
            ):
                if (now - RESUME_WINDOW).timestamp() * 1000 > flagged[other.id]:  # long past its writing turn
                    await self.store.clear_half_done_form(customer.id, other.id, flagged=flagged[other.id])
                continue
            moved = {k: other.slots[k] for k in CARRIED_SLOTS if k in other.slots}
            slots = {**conversation.slots, **moved}
            await self.store.flag_half_done_form(customer.id, conversation.id)
            await self.store.save_conversation(conversation.id, slots=slots, language=other.language)
            await self.store.save_conversation(
                other.id, slots={k: v for k, v in other.slots.items() if k not in ("form", "choices")}
            )
            await self.store.clear_half_done_form(customer.id, other.id)
            forms = {k: v for k, v in customer.half_done_forms.items() if k != other.id} | {conversation.id: 0}
            customer = customer.model_copy(update={"half_done_forms": forms})
            await self._log(
                message,
                conversation.channel,
                "flow_resumed",
                {"from_conversation": other.id, "from_channel": other.channel, "flow": other.slots["form"].get("flow")},
            )
            return conversation.model_copy(update={"slots": slots, "language": other.language}), customer
        return conversation, customer

    async def _understand(self, message: Message, text: str) -> Understood:
        """The NLU's reading of the text, stored beside the message; its events wait for the
        turn's one write."""
        try:
            parse = await self.nlu.parse(text, message_id=message.id)
        except NluUnavailable as exc:
            log.error("NLU unavailable, falling back: %s", exc)
            events: list[tuple[str, dict[str, Any]]] = [("nlu_unavailable", {"error": str(exc)[:500]})]
            # The obvious ("转人工", an order number, the menu's "查询订单") is still understood.
            fallback = await self.nlu.fallback_parse(text)
            if fallback is not None:
                events.append(("nlu_keywords", {"intent": fallback.intent.name}))
            return Understood(fallback, True, events=events)
        entities = [e.entity for e in parse.entities]
        data = {"intent": parse.intent.name, "confidence": parse.intent.confidence, "entities": entities}
        extra = parse.model_extra or {}
        record = {
            "normalized_text": extra.get("normalized_text", text),
            **({"chosen": text} if text != message.text else {}),
            "language": extra.get("language"),
            "traditional": extra.get("traditional", False),
            "varieties": extra.get("varieties", []),
            "intent": parse.intent.name,
            "confidence": parse.intent.confidence,
            "entities": [e.model_dump(exclude_none=True) for e in parse.entities],
        }
        # Written with the outcome; until then the store shows it in this conversation's history,
        # since a ticket the dialogue opens is classified by the conversation's intents, this
        # message's included (backoffice.service.conversation_words).
        self.store.stage_understanding(message.id, record)
        return Understood(parse, False, events=[("nlu_parsed", data)], record=record)

    async def _log(self, message: Message, channel: str, name: str, data: dict[str, Any]) -> None:
        await self.store.log_event(_event(message, channel, name, data))


def _aware_utc(at: datetime) -> datetime:
    """nx-27017 returns ``$set`` datetimes as strings that may parse naive: compare them as UTC."""
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _event(message: Message, channel: str, name: str, data: dict[str, Any]) -> Event:
    return Event(
        name=name, conversation_id=message.conversation_id, customer_id=message.customer_id, channel=channel, data=data
    )


@dataclass(frozen=True, slots=True)
class Understood:
    """What understanding a message found; its events are written with the turn's outcome."""

    parse: ParseResult | None
    nlu_down: bool
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    record: dict[str, Any] | None = None
    """The reading kept beside the message (normalised text, intent, entities)."""
