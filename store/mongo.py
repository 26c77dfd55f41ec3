"""MongoDB persistence of customers, conversations, messages and events.

Written for real MongoDB (standalone, replica set or sharded) and for the embedded
nx-27017 server. nx-27017 stores datetimes written through ``$set`` as strings and ignores
``$setOnInsert`` in an upsert that also has ``$set``, so this module compares and orders by
integers (queue tickets, ObjectId-ordered string ids), never by an updated datetime, and
creates documents with plain inserts guarded by unique indexes.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from errors import Conflict
from store.models import (
    Conversation,
    ConversationState,
    Customer,
    Direction,
    Event,
    InboundMessage,
    Message,
    OutboundMessage,
    utcnow,
)

DUPLICATE_KEY = 11000
STAGED_READINGS = 10_000
"""NLU readings kept in memory for running turns at most (see ``stage_understanding``)."""
"""MongoDB's error code for a write refused by a unique index."""

log = logging.getLogger(__name__)

OPEN_STATES = (ConversationState.BOT, ConversationState.WAITING_AGENT, ConversationState.AGENT)


_ID_RANDOM = os.urandom(3)
_id_counter = itertools.count()


def new_id() -> str:
    """A string id that sorts by creation time to the millisecond, across processes too.

    Shaped like an ObjectId (12 bytes, seconds first, so older ids still sort before newer),
    but bytes 4–5 are the milliseconds where an ObjectId has its per-process random part: two
    gateway processes writing in the same second still produce ids in the order they wrote.
    """
    now_ms = time.time_ns() // 1_000_000
    seconds, millis = divmod(now_ms, 1000)
    counter = next(_id_counter) & 0xFFFFFF
    raw = seconds.to_bytes(4, "big") + millis.to_bytes(2, "big") + _ID_RANDOM + counter.to_bytes(3, "big")
    return str(ObjectId(raw))


def stored_datetime(value: Any) -> datetime | None:
    """A datetime read back from the store as an aware UTC datetime: nx-27017 returns datetimes
    written through ``$set`` as ISO strings, and pydantic's JSON dumps store them as strings too.
    None for a missing or unreadable value."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _aware(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


M = TypeVar("M", Customer, Conversation, Message)


def _from_doc(model: type[M], doc: dict[str, Any]) -> M:
    data = {("id" if k == "_id" else k): _aware(v) for k, v in doc.items()}
    return model.model_validate(data)


def message_from_doc(doc: dict[str, Any]) -> Message:
    """A message as stored (e.g. the full document of a change event)."""
    return _from_doc(Message, doc)


async def array_indexes_work(db: AsyncDatabase[dict[str, Any]]) -> bool:
    """Whether an index on an array field can be created safely (a multikey index).

    nx-27017 0.8.1 indexes the array as one value: once indexed, ``{"tags": "a"}`` matches
    nothing. Real MongoDB is fine. Callers create such indexes only where this is True.
    """
    try:
        info = await db.client.admin.command("buildInfo")
    except Exception:  # unknown server: no array indexes is slow but correct
        return False
    return str(info.get("process", "")).replace("-", "_") != "nx_27017"


class MergeRefused(Conflict):
    """A customer merge that would lose or mix up identities; nothing was changed."""

    code = "merge_refused"


@dataclass(frozen=True, slots=True)
class InboundReceipt:
    """What :meth:`ConversationStore.accept_inbound` stored (or found already stored)."""

    message: Message
    conversation: Conversation
    customer: Customer
    duplicate: bool
    start_counted: bool = False
    """The message was stored with its turn's first start counted (``accept_inbound(starting=True)``)."""
    lease: TakenConversation | None = None
    """The conversation's turn lease, taken with the accept's read of it (``accept_inbound(turn_lease=…)``)."""


@dataclass(frozen=True, slots=True)
class TurnStart:
    """A message's state as its turn starts (see :meth:`ConversationStore.start_turn`)."""

    processed: bool
    turn_starts: int


FREE_TURN_LEASE: dict[str, Any] = {"turn_owner": "", "turn_until_ms": 0}
"""A conversation's turn lease nobody holds (see :meth:`ConversationStore.take_turn_lease`)."""


@dataclass(frozen=True, slots=True)
class TakenConversation:
    """A conversation as its turn lease was taken: the document then (read for every lease, never
    kept across turns: agents and the SLA monitor write it without the lease), and its last written
    turn (``{"message_id", "processed"}``, see :meth:`ConversationStore.commit_turn`)."""

    conversation: Conversation | None
    last_turn: dict[str, Any] | None


def _taking(owner: str, now_ms: int, ttl: float) -> dict[str, Any]:
    """The update that takes a conversation's turn lease."""
    return {"$set": {"turn_owner": owner, "turn_until_ms": now_ms + int(ttl * 1000)}}


def _taken(doc: dict[str, Any] | None) -> TakenConversation:
    if doc is None:
        return TakenConversation(None, None)
    last_turn = doc.get("last_turn")
    return TakenConversation(_from_doc(Conversation, doc), last_turn if isinstance(last_turn, dict) else None)


class ConversationStore:
    """The one conversation store every channel writes to and every layer reads from."""

    def __init__(self, client: AsyncMongoClient[dict[str, Any]], database: str = "aftersales") -> None:
        self.client = client
        self.db: AsyncDatabase[dict[str, Any]] = client[database]
        self.customers = self.db["customers"]
        self.conversations = self.db["conversations"]
        self.messages = self.db["messages"]
        self.events = self.db["events"]
        self.counters = self.db["counters"]
        self.message_keys = self.db["message_keys"]
        self._staged_understanding: dict[str, dict[str, Any]] = {}
        """One document per inbound channel message id (``_id``), naming the stored message."""
        self.media = self.db["media"]
        self.sender_identities: dict[str, str] = {}
        """Channel → the key its sender ids have among a customer's identities (the channel
        registry's; a channel missing here uses its own name). E-mail's is ``mailbox``: the address
        a mail comes from is not the proven contact ``email``."""

    def _sender_kind(self, channel: str) -> str:
        return self.sender_identities.get(channel, channel)

    @classmethod
    def from_uri(cls, uri: str, database: str = "aftersales") -> ConversationStore:
        # Our default gives up on an unreachable store after 5 s (pymongo's own is 30 s); a timeout
        # the URI sets wins (pymongo lets keyword arguments override the URI's options).
        options: dict[str, Any] = (
            {} if "serverselectiontimeoutms=" in uri.lower() else {"serverSelectionTimeoutMS": 5000}
        )
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri, tz_aware=True, **options)
        return cls(client, database)

    async def close(self) -> None:
        await self.client.close()

    async def ping(self) -> bool:
        try:
            await self.client.admin.command("ping")
        except Exception as exc:  # any failure means "not ready"; the caller only needs yes/no
            log.debug("store ping failed: %s", exc)
            return False
        return True

    async def ensure_indexes(self, identity_kinds: tuple[str, ...] = ("phone", "email")) -> None:
        """Indexes, created once at start. ``identity_kinds``: every key a customer's identities may
        have (the channel registry's), each unique among customers."""
        for identity in identity_kinds:
            field = f"identities.{identity}"
            await self.customers.create_index(field, unique=True, partialFilterExpression={field: {"$exists": True}})
        await self.conversations.create_index(
            "open_key", unique=True, partialFilterExpression={"open_key": {"$exists": True}}
        )
        # nx-27017 cannot put _id into a compound index; a conversation's documents are few
        # enough that sorting them by _id after the index lookup costs nothing.
        await self.conversations.create_index("customer_id")
        await self.conversations.create_index([("state", ASCENDING), ("queue_ticket", ASCENDING)])
        await self.conversations.create_index("state")  # nx-27017 uses single-field indexes only
        await self.messages.create_index([("channel", ASCENDING), ("channel_message_id", ASCENDING)], unique=True)
        await self.messages.create_index("conversation_id")
        await self.messages.create_index([("in_reply_to", ASCENDING)])
        await self.messages.create_index([("direction", ASCENDING), ("processed", ASCENDING)])
        await self.messages.create_index([("channel", ASCENDING), ("delivered", ASCENDING), ("failed", ASCENDING)])
        await self.events.create_index([("name", ASCENDING), ("at", ASCENDING)])
        await self.events.create_index([("conversation_id", ASCENDING)])
        # Replies stored before senders claimed what they send get an empty claim.
        await self.messages.update_many(
            {"direction": Direction.OUTBOUND.value, "delivered": False, "sending_owner": {"$exists": False}},
            {"$set": {"sending_owner": "", "sending_ms": 0}},
        )

    # -- customers -------------------------------------------------------------------------

    async def resolve_customer(self, channel: str, sender_id: str, profile: dict[str, str]) -> Customer:
        """Find the customer behind a channel identity, linking the identities the channel proved.

        ``profile`` holds only identities the channel verified (a signed customer token, Telegram's
        own contact, the SMS sender); they are added where the customer has none of that kind and
        never replace one it has: an identity is changed only by an explicit, audited merge."""
        sender_kind = self._sender_kind(channel)
        doc = await self.customers.find_one({f"identities.{sender_kind}": sender_id})
        if doc is None:
            for kind in ("phone", "email"):
                if value := profile.get(kind):
                    doc = await self.customers.find_one({f"identities.{kind}": value})
                    if doc is not None:
                        break
        if doc is None:
            identities = {sender_kind: sender_id, **_linkable(profile)}
            new = {
                "_id": new_id(),
                "identities": identities,
                "name": profile.get("name"),
                "created_at": utcnow(),
            }
            try:
                await self.customers.insert_one(new)
                return _from_doc(Customer, new)
            except DuplicateKeyError:
                # A concurrent first message created this customer; use that one.
                doc = await self.customers.find_one({f"identities.{sender_kind}": sender_id})
                if doc is None:
                    raise
        return await self._link(doc, {sender_kind: sender_id, **_linkable(profile)})

    async def _link(self, doc: dict[str, Any], proven: dict[str, str]) -> Customer:
        """Add proven identities of kinds the customer lacks; a kind it has keeps its value."""
        have: dict[str, str] = doc.get("identities", {})
        missing = {f"identities.{kind}": value for kind, value in proven.items() if kind not in have}
        conflicting = sorted(kind for kind, value in proven.items() if kind in have and have[kind] != value)
        if conflicting:  # the kinds only: the values are phone numbers and addresses
            log.info("customer %s keeps its own %s", doc["_id"], ", ".join(conflicting))
        if missing:
            try:
                await self.customers.update_one({"_id": doc["_id"]}, {"$set": missing})
                doc = await self.customers.find_one({"_id": doc["_id"]}) or doc
            except DuplicateKeyError:
                log.warning("identity already belongs to another customer: %s", ", ".join(sorted(missing)))
        return _from_doc(Customer, doc)

    async def customer_with_identity(self, kind: str, value: str) -> Customer | None:
        """The customer one of whose identities (``phone``, ``email``, a channel's sender id) is this."""
        doc = await self.customers.find_one({f"identities.{kind}": value})
        return _from_doc(Customer, doc) if doc else None

    async def get_customer(self, customer_id: str) -> Customer | None:
        doc = await self.customers.find_one({"_id": customer_id})
        return _from_doc(Customer, doc) if doc else None

    async def flag_half_done_form(self, customer_id: str, conversation_id: str) -> None:
        """The conversation is about to hold a half-done flow (``Customer.half_done_forms``); set
        before its slots are written, so a crash leaves a flag, never a missing one."""
        await self.customers.update_one(
            {"_id": customer_id}, {"$set": {f"half_done_forms.{conversation_id}": int(time.time() * 1000)}}
        )

    async def clear_half_done_form(self, customer_id: str, conversation_id: str, *, flagged: int | None = None) -> None:
        """The conversation's flow is finished or moved on (written by the conversation's own turn,
        or by the turn that took the flow over); ``flagged``: only the flag set then (a stale one
        another conversation's turn clears), not one set again since."""
        field = f"half_done_forms.{conversation_id}"
        where: dict[str, Any] = {"_id": customer_id, **({field: flagged} if flagged is not None else {})}
        await self.customers.update_one(where, {"$unset": {field: ""}})

    async def merge_customers(self, source_id: str, target_id: str, *, actor: str, reason: str) -> Customer:
        """Fold ``source`` into ``target``: its identities, conversations and messages move over.

        Explicit (an agent or the shop's backend decides, never a guess) and audited: a
        ``customers_merged`` event records who, why and which identities moved. Written without a
        transaction (standalone MongoDB has none): the event is written first as a journal and
        every step is idempotent, so re-running an interrupted merge finishes it.
        Raises :class:`MergeRefused` for unknown customers, a merge into itself, or identities of
        the same kind with different values on both (an agent must pick one first).
        """
        if source_id == target_id:
            raise MergeRefused("a customer cannot be merged into itself")
        source = await self.customers.find_one({"_id": source_id})
        target = await self.customers.find_one({"_id": target_id})
        if source is None or target is None:
            raise MergeRefused(f"unknown customer: {source_id if source is None else target_id}")
        journal_id = f"merge:{source_id}:{target_id}"
        journal = await self.events.find_one({"_id": journal_id})
        if journal is None:
            if source.get("merged_into"):
                raise MergeRefused(f"customer {source_id} was already merged into {source['merged_into']}")
            moving: dict[str, str] = dict(source.get("identities", {}))
            theirs: dict[str, str] = target.get("identities", {})
            conflicts = sorted(k for k, v in moving.items() if k in theirs and theirs[k] != v)
            if conflicts:
                raise MergeRefused(f"both customers have a different {', '.join(conflicts)}")
            journal = {
                "_id": journal_id,
                "name": "customers_merged",
                "customer_id": target_id,
                "data": {
                    "source": source_id,
                    "target": target_id,
                    "actor": actor,
                    "reason": reason,
                    "identities": moving,
                },
                "at": utcnow(),
            }
            with contextlib.suppress(DuplicateKeyError):
                await self.events.insert_one(journal)
        moving = dict(journal["data"]["identities"])
        if moving:
            # Unset first: the unique identity indexes allow a value on one customer only.
            await self.customers.update_one({"_id": source_id}, {"$unset": {f"identities.{k}": "" for k in moving}})
            await self.customers.update_one(
                {"_id": target_id}, {"$set": {f"identities.{k}": v for k, v in moving.items()}}
            )
        await self.conversations.update_many({"customer_id": source_id}, {"$set": {"customer_id": target_id}})
        await self.messages.update_many({"customer_id": source_id}, {"$set": {"customer_id": target_id}})
        await self.customers.update_one({"_id": source_id}, {"$set": {"merged_into": target_id}})
        merged = await self.get_customer(target_id)
        if merged is None:
            raise MergeRefused(f"customer {target_id} disappeared during the merge")
        log.info("customer %s merged into %s by %s: %s", source_id, target_id, actor, reason)
        return merged

    # -- conversations ---------------------------------------------------------------------

    async def open_conversation(self, customer: Customer, channel: str, sender_id: str) -> Conversation:
        """The customer's open conversation on this channel identity, created when there is none."""
        key = f"{channel}:{sender_id}"
        doc = await self.conversations.find_one({"open_key": key})
        if doc is not None:
            return _from_doc(Conversation, doc)
        now = utcnow()
        new = {
            "_id": new_id(),
            "open_key": key,
            "customer_id": customer.id,
            "channel": channel,
            "sender_id": sender_id,
            "state": ConversationState.BOT.value,
            "slots": {},
            "language": customer.language or "zh",
            "created_at": now,
            "updated_at": now,
            **FREE_TURN_LEASE,
        }
        try:
            await self.conversations.insert_one(new)
        except DuplicateKeyError:
            doc = await self.conversations.find_one({"open_key": key})
            if doc is None:
                raise
            return _from_doc(Conversation, doc)
        return _from_doc(Conversation, new)

    async def open_conversation_of(self, channel: str, sender_id: str) -> Conversation | None:
        """This channel identity's open conversation, if it has one (never creates one)."""
        doc = await self.conversations.find_one({"open_key": f"{channel}:{sender_id}"})
        return _from_doc(Conversation, doc) if doc else None

    async def get_conversation(self, conversation_id: str) -> Conversation | None:
        doc = await self.conversations.find_one({"_id": conversation_id})
        return _from_doc(Conversation, doc) if doc else None

    async def conversations_by_id(self, conversation_ids: Sequence[str]) -> list[Conversation]:
        """These conversations (those that exist), by ``_id``; no round trip for none."""
        if not conversation_ids:
            return []
        cursor = self.conversations.find({"_id": {"$in": list(conversation_ids)}})
        return [_from_doc(Conversation, d) async for d in cursor]

    async def save_conversation(
        self,
        conversation_id: str,
        *,
        slots: dict[str, Any] | None = None,
        language: str | None = None,
    ) -> None:
        changes: dict[str, Any] = {"updated_at": utcnow()}
        if slots is not None:
            changes["slots"] = slots
        if language is not None:
            changes["language"] = language
        await self.conversations.update_one({"_id": conversation_id}, {"$set": changes})

    # -- the turn lease ----------------------------------------------------------------------

    async def take_turn_lease(self, conversation_id: str, owner: str | None, ttl: float) -> TakenConversation | None:
        """Take the conversation's turn lease for ``ttl`` seconds and read the conversation in the
        same round trip; None while another process holds a live one. ``owner`` None: this process
        is the only one, so only the read is done. A conversation stored before its documents held
        the lease (no ``turn_until_ms``) is taken by compare-and-set on what a read found.

        The lease lives on the conversation's own document (``turn_owner``, ``turn_until_ms``,
        epoch milliseconds): taking it is the turn's read of the conversation, and the turn's write
        of the conversation hands it back (:meth:`commit_turn`). Agents and the SLA monitor write
        the same document without the lease, always by ``$set`` of their own fields, so neither
        loses the other's writes."""
        if owner is None:
            return _taken(await self.conversations.find_one({"_id": conversation_id}))
        now = int(time.time() * 1000)
        taking = _taking(owner, now, ttl)
        doc = await self.conversations.find_one_and_update(
            {"_id": conversation_id, "turn_until_ms": {"$lt": now}}, taking, return_document=ReturnDocument.AFTER
        )
        if doc is not None:
            return _taken(doc)
        # Held (a live lease is busy even when this process holds it: another of its requests or
        # its recovery; a release that failed blocks it until it runs out), or a document without
        # the lease fields: equality on what was read (nx-27017 scans for an $or, and mismatches a
        # null inside one; a plain null equality matches the missing field).
        current = await self.conversations.find_one({"_id": conversation_id})
        if current is None:
            return _taken(None)
        holder, until = current.get("turn_owner"), current.get("turn_until_ms")
        if isinstance(until, int) and until >= now:
            return None
        doc = await self.conversations.find_one_and_update(
            {"_id": conversation_id, "turn_owner": holder, "turn_until_ms": until},
            taking,
            return_document=ReturnDocument.AFTER,
        )
        if doc is not None and holder not in (owner, "", None):
            log.info("turn lease of conversation %s taken over from %s (expired)", conversation_id, holder)
        return _taken(doc) if doc is not None else None

    async def renew_turn_lease(self, conversation_id: str, owner: str, ttl: float) -> bool:
        """Keep holding the conversation's turn lease; False if it was lost (expired and taken)."""
        until = int(time.time() * 1000) + int(ttl * 1000)
        result = await self.conversations.update_one(
            {"_id": conversation_id, "turn_owner": owner}, {"$set": {"turn_until_ms": until}}
        )
        return result.matched_count == 1

    async def release_turn_lease(self, conversation_id: str, owner: str) -> None:
        """Hand the turn lease back without a turn's write (the turn wrote no slots)."""
        await self.conversations.update_one({"_id": conversation_id, "turn_owner": owner}, {"$set": FREE_TURN_LEASE})

    async def commit_turn(
        self,
        conversation_id: str,
        message_id: str,
        processed: dict[str, Any],
        *,
        slots: dict[str, Any],
        language: str | None,
        release: str | None = None,
    ) -> bool:
        """A turn's write of its conversation: slots and language, and the turn itself
        (``last_turn``: its message and what :meth:`mark_processed` will write to it), so a process
        that takes the lease before the message is marked processed finishes that instead of
        running the turn again (:meth:`finish_turn`). ``release``: the holder, handing the lease
        back in the same write; True if it did (False: the lease was lost, the write is made
        anyway, as every turn's write always was)."""
        changes: dict[str, Any] = {
            "updated_at": utcnow(),
            "slots": slots,
            "last_turn": {"message_id": message_id, "processed": processed},
            **({"language": language} if language is not None else {}),
        }
        if release is not None:
            result = await self.conversations.update_one(
                {"_id": conversation_id, "turn_owner": release}, {"$set": {**changes, **FREE_TURN_LEASE}}
            )
            if result.matched_count == 1:
                return True
        await self.conversations.update_one({"_id": conversation_id}, {"$set": changes})
        return False

    async def finish_turn(self, message_id: str, processed: dict[str, Any]) -> None:
        """Mark processed (``processed``: :meth:`processed_changes`) a message whose turn wrote its
        conversation: by that turn, or by whoever takes the lease next if it stopped before."""
        await self.messages.update_one({"_id": message_id}, {"$set": processed})

    async def flag_awaiting(self, conversation_ids: Sequence[str], kind: str, item_id: str, value: int) -> None:
        """Something (``kind``: a ticket, a survey) is about to wait for the customer's next message
        on these conversations, so their turns look for it (``Conversation.awaiting``). Set before
        the write that makes it wait: a crash leaves a flag a turn checks and clears, never a
        missing one. ``value`` tells the reader whether that write has landed (a ticket version,
        when a survey was asked)."""
        if conversation_ids:
            await self.conversations.update_many(
                {"_id": {"$in": list(conversation_ids)}}, {"$set": {f"awaiting.{kind}.{item_id}": value}}
            )

    async def clear_awaiting(self, conversation_id: str, kind: str, item_id: str, value: int) -> None:
        """The thing flagged with ``value`` no longer waits; a newer flag (set again since) stays."""
        await self.conversations.update_one(
            {"_id": conversation_id, f"awaiting.{kind}.{item_id}": value},
            {"$unset": {f"awaiting.{kind}.{item_id}": ""}},
        )

    async def hand_to_queue(
        self,
        conversation_id: str,
        reason: str,
        *,
        priority: int = 0,
        queue: str | None = None,
        need: dict[str, Any] | None = None,
    ) -> int:
        """Move a conversation to ``waiting_agent`` with a queue ticket; returns the ticket.

        The queue is ordered by need, then arrival: ``queue_rank`` puts every conversation of a
        higher ``priority`` ahead of the lower ones (an angry customer told "优先转接" really is).
        ``need`` (the score's factors) is kept for the agent and for re-ranking as it waits
        (:meth:`set_queue_rank`)."""
        counter = await self.counters.find_one_and_update(
            {"_id": "queue_ticket"}, {"$inc": {"value": 1}}, upsert=True, return_document=ReturnDocument.AFTER
        )
        if counter is None:  # upsert with ReturnDocument.AFTER always returns a document
            raise RuntimeError("queue ticket counter missing after upsert")
        ticket = int(counter["value"])
        await self.conversations.update_one(
            {"_id": conversation_id, "state": ConversationState.BOT.value},
            {
                "$set": {
                    "state": ConversationState.WAITING_AGENT.value,
                    "queue_ticket": ticket,
                    "priority": priority,
                    "queue_rank": queue_rank(ticket, priority),
                    **({"queue": queue} if queue else {}),
                    **({"queue_need": need} if need is not None else {}),
                    "handed_off_ms": int(time.time() * 1000),
                    "handoff_reason": reason,
                    "handed_off_at": utcnow(),
                    "updated_at": utcnow(),
                }
            },
        )
        return ticket

    async def queue_position(self, conversation_id: str) -> int | None:
        """1-based place among conversations waiting for an agent, or None if not waiting."""
        doc = await self.conversations.find_one({"_id": conversation_id})
        if not doc or doc.get("state") != ConversationState.WAITING_AGENT.value:
            return None
        mine = doc.get("queue_rank", doc["queue_ticket"])
        waiting = self.conversations.find(
            {"state": ConversationState.WAITING_AGENT.value}, {"queue_rank": 1, "queue_ticket": 1}
        )
        ahead = [d async for d in waiting if d.get("queue_rank", d.get("queue_ticket", 0)) < mine]
        return len(ahead) + 1

    async def waiting_documents(self, limit: int = 1000) -> list[dict[str, Any]]:
        """Waiting conversations as stored (rank, need, when handed off, what they were told), in queue order."""
        cursor = self.conversations.find(
            {"state": ConversationState.WAITING_AGENT.value},
            {"queue_rank": 1, "queue_ticket": 1, "priority": 1, "queue_need": 1, "handed_off_ms": 1,
             "queue_told": 1, "customer_id": 1, "channel": 1},
        ).limit(limit)  # fmt: skip
        found = [d async for d in cursor]
        found.sort(key=lambda d: d.get("queue_rank", d.get("queue_ticket", 0)))
        return found

    async def set_queue_rank(self, conversation_id: str, rank: int) -> None:
        """Re-rank a waiting conversation (its need grew while it waited)."""
        await self.conversations.update_one(
            {"_id": conversation_id, "state": ConversationState.WAITING_AGENT.value}, {"$set": {"queue_rank": rank}}
        )

    async def set_queue_told(self, conversation_id: str, told: dict[str, Any]) -> None:
        """The place the customer was last told, and how many times they were told."""
        await self.conversations.update_one({"_id": conversation_id}, {"$set": {"queue_told": told}})

    async def set_handoff_summary(self, conversation_id: str, summary: dict[str, Any]) -> None:
        await self.conversations.update_one({"_id": conversation_id}, {"$set": {"handoff_summary": summary}})

    async def claim_conversation(self, conversation_id: str, agent_id: str) -> Conversation | None:
        """An agent takes a waiting conversation; None if it is not waiting (someone else took it)."""
        result = await self.conversations.update_one(
            {"_id": conversation_id, "state": ConversationState.WAITING_AGENT.value},
            {
                "$set": {
                    "state": ConversationState.AGENT.value,
                    "agent_id": agent_id,
                    "claimed_at": utcnow(),
                    "updated_at": utcnow(),
                }
            },
        )
        if result.matched_count != 1:
            return None
        return await self.get_conversation(conversation_id)

    async def transfer_conversation(
        self, conversation_id: str, from_agent: str, *, to_agent: str | None = None, queue: str | None = None
    ) -> Conversation | None:
        """The owning agent passes the conversation on: to another agent (who owns it at once) or
        to a skill group's queue (it waits again, at the back). None if ``from_agent`` does not own it."""
        owned = {"_id": conversation_id, "state": ConversationState.AGENT.value, "agent_id": from_agent}
        if to_agent is not None:
            changes: dict[str, Any] = {"agent_id": to_agent, "claimed_at": utcnow(), "updated_at": utcnow()}
            if queue is not None:
                changes["queue"] = queue
            result = await self.conversations.update_one(owned, {"$set": changes})
        else:
            counter = await self.counters.find_one_and_update(
                {"_id": "queue_ticket"}, {"$inc": {"value": 1}}, upsert=True, return_document=ReturnDocument.AFTER
            )
            assert counter is not None
            current = await self.conversations.find_one(owned, {"priority": 1})
            priority = int((current or {}).get("priority", 0))
            changes = {
                "state": ConversationState.WAITING_AGENT.value,
                "queue_ticket": int(counter["value"]),
                "queue_rank": queue_rank(int(counter["value"]), priority),
                "queue": queue,
                "updated_at": utcnow(),
            }
            result = await self.conversations.update_one(owned, {"$set": changes, "$unset": {"agent_id": ""}})
        if result.matched_count != 1:
            return None
        return await self.get_conversation(conversation_id)

    async def return_to_bot(self, conversation_id: str, *, slots: dict[str, Any] | None = None) -> Conversation | None:
        """The agent is done: the bot answers this conversation again, starting afresh."""
        changes: dict[str, Any] = {"state": ConversationState.BOT.value, "updated_at": utcnow(), "slots": slots or {}}
        result = await self.conversations.update_one(
            {
                "_id": conversation_id,
                "state": {"$in": [ConversationState.AGENT.value, ConversationState.WAITING_AGENT.value]},
            },
            {
                "$set": changes,
                "$unset": {
                    "agent_id": "",
                    "queue_ticket": "",
                    "queue_rank": "",
                    "priority": "",
                    "queue_need": "",
                    "queue_told": "",
                    "handed_off_ms": "",
                    "handoff_reason": "",
                    "queue": "",
                },
            },
        )
        if result.matched_count != 1:
            return None
        return await self.get_conversation(conversation_id)

    async def customer_conversations(self, customer_id: str, limit: int = 20) -> list[Conversation]:
        """The customer's conversations on every channel, most recently active first."""
        cursor = self.conversations.find({"customer_id": customer_id}).limit(200)
        found = [_from_doc(Conversation, d) async for d in cursor]
        # nx-27017 returns $set datetimes as strings, which may parse naive: compare as UTC.
        found.sort(key=lambda c: _aware(c.updated_at), reverse=True)
        return found[:limit]

    async def agent_conversations(self, agent_id: str, limit: int = 100) -> list[Conversation]:
        """The conversations this agent holds now."""
        cursor = self.conversations.find({"state": ConversationState.AGENT.value, "agent_id": agent_id}).limit(limit)
        return [_from_doc(Conversation, d) async for d in cursor]

    async def waiting_conversations(self, limit: int = 100) -> list[Conversation]:
        cursor = self.conversations.find({"state": ConversationState.WAITING_AGENT.value})
        found = [d async for d in cursor]
        found.sort(key=lambda d: d.get("queue_rank", d.get("queue_ticket", 0)))
        return [_from_doc(Conversation, d) for d in found[:limit]]

    # -- messages --------------------------------------------------------------------------

    async def accept_inbound(
        self, inbound: InboundMessage, *, starting: bool = False, turn_lease: tuple[str, float] | None = None
    ) -> InboundReceipt:
        """Persist an inbound message exactly once; a redelivery returns the stored one.
        ``starting``: the caller runs the message's turn at once, so the turn's first start is
        counted in the message as stored (:meth:`start_turn`'s round trip saved). ``turn_lease``
        (holder, seconds): the caller runs the turn under the conversation's lease, so the read of
        the sender's open conversation takes it when it is free (``InboundReceipt.lease``; the
        turn's own taking saved); the caller hands it back.

        The channel's message id is claimed first in ``message_keys`` (``_id`` = channel and id,
        holding the message's id): an insert that fails means a redelivery, found by ``_id``. A
        lookup by ``(channel, channel_message_id)`` on ``messages`` would scan the collection on
        the embedded server, and a separate key collection lets ``messages`` be sharded by
        conversation. The unique index on ``messages`` stays as the safety net for messages stored
        before the keys existed."""
        key = inbound_key(inbound.channel, inbound.channel_message_id)
        message_id = new_id()
        try:
            await self.message_keys.insert_one({"_id": key, "message_id": message_id})
        except DuplicateKeyError:
            claimed = await self.message_keys.find_one({"_id": key})
            if claimed is None:
                raise
            message_id = str(claimed["message_id"])
            existing = await self.messages.find_one({"_id": message_id})
            if existing is not None:
                return await self._receipt(existing, duplicate=True)
            # The key was claimed by a delivery that died before storing the message: store it now.
        customer, conversation, lease = await self._customer_and_conversation(inbound, turn_lease)
        doc = {
            "_id": message_id,
            "conversation_id": conversation.id,
            "customer_id": customer.id,
            "channel": inbound.channel,
            "direction": Direction.INBOUND.value,
            "text": inbound.text,
            "attachments": [a.model_dump(exclude_none=True) for a in inbound.attachments],
            "channel_message_id": inbound.channel_message_id,
            "author": "customer",
            "metadata": inbound.metadata,
            "created_at": inbound.received_at,
            "processed": False,
            "turn_starts": 1 if starting else 0,
        }
        try:
            await self.messages.insert_one(doc)
        except BaseException as exc:
            # Not stored, or stored already (perhaps in another conversation): the lease goes back.
            await self._hand_back(lease, turn_lease)
            if not isinstance(exc, DuplicateKeyError):
                raise
            existing = await self.messages.find_one({"_id": message_id}) or await self.messages.find_one(
                {"channel": inbound.channel, "channel_message_id": inbound.channel_message_id}
            )
            if existing is None:
                raise
            return await self._receipt(existing, duplicate=True)
        return InboundReceipt(
            _from_doc(Message, doc), conversation, customer, duplicate=False, start_counted=starting, lease=lease
        )

    async def _hand_back(self, taken: TakenConversation | None, turn_lease: tuple[str, float] | None) -> None:
        """Give back a turn lease taken by an accept that stores no message for a turn."""
        if taken is not None and taken.conversation is not None and turn_lease is not None:
            with contextlib.suppress(Exception):  # the store is down: the lease runs out
                await self.release_turn_lease(taken.conversation.id, turn_lease[0])

    async def inbound_stored(self, channel: str, channel_message_id: str) -> bool:
        """Whether this channel message is stored already (by its key: no collection scan)."""
        claimed = await self.message_keys.find_one({"_id": inbound_key(channel, channel_message_id)})
        return (
            claimed is not None and await self.messages.find_one({"_id": claimed["message_id"]}, {"_id": 1}) is not None
        )

    async def _customer_and_conversation(
        self, inbound: InboundMessage, turn_lease: tuple[str, float] | None = None
    ) -> tuple[Customer, Conversation, TakenConversation | None]:
        """The sender's open conversation decides the customer (the channel proved the sender, and
        the conversation was bound to its customer when it opened); only a sender without one is
        resolved through its identities. ``turn_lease``: the open conversation's turn lease is
        taken with its read when it is free (else it is only read)."""
        where = {"open_key": f"{inbound.channel}:{inbound.sender_id}"}
        taken: TakenConversation | None = None
        if turn_lease is not None:
            owner, ttl = turn_lease
            now = int(time.time() * 1000)
            open_doc = await self.conversations.find_one_and_update(
                {**where, "turn_until_ms": {"$lt": now}}, _taking(owner, now, ttl), return_document=ReturnDocument.AFTER
            )
            taken = _taken(open_doc) if open_doc is not None else None
            open_doc = open_doc or await self.conversations.find_one(where)
        else:
            open_doc = await self.conversations.find_one(where)
        try:
            if open_doc is not None:
                customer_doc = await self.customers.find_one({"_id": open_doc["customer_id"]})
                if customer_doc is not None:
                    customer = await self._link(customer_doc, _linkable(inbound.profile))
                    return customer, _from_doc(Conversation, open_doc), taken
            customer = await self.resolve_customer(inbound.channel, inbound.sender_id, inbound.profile)
            conversation = await self.open_conversation(customer, inbound.channel, inbound.sender_id)
        except BaseException:
            await self._hand_back(taken, turn_lease)
            raise
        if taken is not None and (taken.conversation is None or taken.conversation.id != conversation.id):
            await self._hand_back(taken, turn_lease)  # a lease on another conversation is not the turn's
            taken = None
        return customer, conversation, taken

    async def _receipt(self, doc: dict[str, Any], *, duplicate: bool) -> InboundReceipt:
        conversation = await self.get_conversation(doc["conversation_id"])
        customer = await self.get_customer(doc["customer_id"])
        if conversation is None or customer is None:
            raise LookupError(f"message {doc['_id']} points at a missing conversation or customer")
        return InboundReceipt(_from_doc(Message, doc), conversation, customer, duplicate=duplicate)

    async def record_outbound(
        self, outbound: OutboundMessage, customer_id: str, sequence: int, *, key: str | None = None
    ) -> Message:
        """Store a reply in the outbox. Replies to one inbound message are keyed by their
        sequence, so re-running a turn after a crash cannot store a reply twice; other messages
        (an agent's) by the caller's ``key``, so a retried request is stored once."""
        doc = _outbound_document(outbound, customer_id, sequence, key)
        try:
            await self.messages.insert_one(doc)
        except DuplicateKeyError:
            where = {"channel": doc["channel"], "channel_message_id": doc["channel_message_id"]}
            existing = await self.messages.find_one(where)
            if existing is None:
                raise
            return _from_doc(Message, existing)
        return _from_doc(Message, doc)

    async def record_replies(
        self, outbounds: Sequence[OutboundMessage], customer_id: str, *, delivered: bool = False
    ) -> list[Message]:
        """A turn's replies in one round trip, each keyed by its sequence like
        :meth:`record_outbound` (a re-run turn stores none twice), in order. ``delivered``: the
        channel hands them over in its response, so no outbox sends them."""
        docs = [_outbound_document(reply, customer_id, sequence, None) for sequence, reply in enumerate(outbounds)]
        if not docs:
            return []
        for doc in docs:
            doc["delivered"] = delivered
        try:
            await self.messages.insert_many(docs, ordered=True)
        except BulkWriteError as exc:
            if any(error.get("code") != DUPLICATE_KEY for error in exc.details.get("writeErrors", [])):
                raise
            # A re-run turn: some replies are stored already; each one alone finds or stores it.
            return [await self.record_outbound(o, customer_id, i) for i, o in enumerate(outbounds)]
        return [_from_doc(Message, d) for d in docs]

    async def get_message(self, message_id: str) -> Message | None:
        doc = await self.messages.find_one({"_id": message_id})
        return _from_doc(Message, doc) if doc else None

    async def replies_to(self, inbound_id: str) -> list[Message]:
        cursor = self.messages.find({"in_reply_to": inbound_id}).sort("channel_message_id", ASCENDING)
        return [_from_doc(Message, d) async for d in cursor]

    async def mark_processed(
        self,
        message_id: str,
        *,
        quarantined: bool = False,
        acted: list[dict[str, Any]] | None = None,
        variety: str | None = None,
        understanding: dict[str, Any] | None = None,
    ) -> None:
        """The turn is done (see :meth:`processed_changes`)."""
        changes = self.processed_changes(
            message_id, quarantined=quarantined, acted=acted, variety=variety, understanding=understanding
        )
        await self.messages.update_one({"_id": message_id}, {"$set": changes})

    def processed_changes(
        self,
        message_id: str,
        *,
        quarantined: bool = False,
        acted: list[dict[str, Any]] | None = None,
        variety: str | None = None,
        understanding: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """What marks a message processed: ``acted`` is what the bot did about it (the quality
        team's and the conversation tests' record), ``variety`` the written variety it answered
        in, ``understanding`` the NLU's reading (staged by :meth:`stage_understanding` until now)."""
        staged = self._staged_understanding.pop(message_id, None)
        changes: dict[str, Any] = {"processed": True}
        if understanding is not None or staged is not None:
            changes["understanding"] = understanding if understanding is not None else staged
        if quarantined:
            changes["quarantined"] = True
        if acted is not None:
            changes["acted"] = acted
        if variety is not None:
            changes["reply_variety"] = variety
        return changes

    def stage_understanding(self, message_id: str, understanding: dict[str, Any]) -> None:
        """The NLU's reading of a message whose turn is running, shown by :meth:`history` in this
        process until :meth:`mark_processed` writes it with the turn's outcome (one round trip
        fewer per turn; a turn that dies before is re-run and read again)."""
        while len(self._staged_understanding) >= STAGED_READINGS:  # turns that died: oldest first
            self._staged_understanding.pop(next(iter(self._staged_understanding)))
        self._staged_understanding[message_id] = understanding

    async def mark_delivered(self, message_ids: list[str]) -> None:
        if message_ids:
            await self.messages.update_many({"_id": {"$in": message_ids}}, {"$set": {"delivered": True}})

    # -- outbox ----------------------------------------------------------------------------

    async def pending_outbound(
        self, channel: str, limit: int = 200, *, recipients: list[str] | None = None
    ) -> list[tuple[Message, int]]:
        """Undelivered replies for a channel (to ``recipients`` only, if given), oldest first, each
        with when it may next be tried (epoch milliseconds). Not-yet-due ones are included so a
        sender can keep per-recipient order."""
        query: dict[str, Any] = {
            "channel": channel,
            "direction": Direction.OUTBOUND.value,
            "delivered": False,
            "failed": False,
        }
        if recipients is not None:
            query["recipient_id"] = {"$in": recipients}
        cursor = self.messages.find(query).sort("_id", ASCENDING).limit(limit)
        return [(_from_doc(Message, d), int(d.get("next_attempt_ms", 0))) async for d in cursor]

    async def thread_of(self, conversation_id: str, in_reply_to: str | None) -> dict[str, Any] | None:
        """The customer message a reply belongs to (the one it answers, else the conversation's
        latest): its channel message id and the channel's metadata, for threading (e-mail)."""
        if in_reply_to is not None:
            doc = await self.messages.find_one({"_id": in_reply_to})
        else:
            cursor = (
                self.messages.find({"conversation_id": conversation_id, "direction": Direction.INBOUND.value})
                .sort("_id", DESCENDING)
                .limit(1)
            )
            doc = next(iter([d async for d in cursor]), None)
        if doc is None:
            return None
        return {"channel_message_id": doc.get("channel_message_id"), "metadata": doc.get("metadata") or {}}

    async def claim_for_sending(self, message_ids: list[str], owner: str, now_ms: int, stale_ms: int) -> bool:
        """Mark undelivered replies as being sent by ``owner``, all or none. Refused while another
        sender's claim on one of them is younger than ``stale_ms``: that sender may have handed it
        to the provider and not yet recorded it (a store too slow to let it finish in its lease).

        Read, then compare-and-set on the values read: equality filters only, which nx-27017
        answers from the ``_id`` index (an ``$or`` made it scan the collection, 65 ms at 6,000)."""
        claimed: list[str] = []
        for message_id in message_ids:
            doc = await self.messages.find_one({"_id": message_id})
            holder, since = str((doc or {}).get("sending_owner", "")), int((doc or {}).get("sending_ms", 0))
            free = holder in ("", owner) or since < now_ms - stale_ms
            result = None
            if doc is not None and not doc.get("delivered") and free:
                result = await self.messages.update_one(
                    {"_id": message_id, "delivered": False, "sending_owner": holder, "sending_ms": since},
                    {"$set": {"sending_owner": owner, "sending_ms": now_ms}},
                )
            if result is None or result.matched_count != 1:
                await self.release_sending(claimed, owner)
                return False
            claimed.append(message_id)
        return True

    async def release_sending(self, message_ids: list[str], owner: str) -> None:
        if message_ids:
            await self.messages.update_many(
                {"_id": {"$in": message_ids}, "sending_owner": owner}, {"$set": {"sending_owner": "", "sending_ms": 0}}
            )

    async def mark_sent(self, message_id: str, provider_message_id: str | None) -> None:
        changes: dict[str, Any] = {"delivered": True}
        if provider_message_id is not None:
            changes["provider_message_id"] = provider_message_id
        await self.messages.update_one({"_id": message_id}, {"$set": changes})

    async def schedule_retry(self, message_id: str, attempts: int, next_attempt_ms: int, error: str) -> None:
        await self.messages.update_one(
            {"_id": message_id},
            {"$set": {"attempts": attempts, "next_attempt_ms": next_attempt_ms, "last_error": error[:500]}},
        )

    async def mark_send_failed(self, message_id: str, attempts: int, error: str) -> None:
        """Give up on a reply (kept, with the reason, for an agent to see)."""
        await self.messages.update_one(
            {"_id": message_id}, {"$set": {"attempts": attempts, "failed": True, "last_error": error[:500]}}
        )

    async def channel_history(
        self, channel: str, sender_id: str, after_id: str | None = None, limit: int = 100
    ) -> list[Message]:
        """Messages of this channel identity's open conversation after ``after_id`` (ids sort by
        time), oldest first; without ``after_id`` the latest ``limit``."""
        conversation = await self.conversations.find_one({"open_key": f"{channel}:{sender_id}"})
        if conversation is None:
            return []
        query: dict[str, Any] = {"conversation_id": conversation["_id"]}
        if after_id is None:
            cursor = self.messages.find(query).sort("_id", DESCENDING).limit(limit)
            return list(reversed([_from_doc(Message, d) async for d in cursor]))
        query["_id"] = {"$gt": after_id}
        cursor = self.messages.find(query).sort("_id", ASCENDING).limit(limit)
        return [_from_doc(Message, d) async for d in cursor]

    async def mark_read(self, channel: str, sender_id: str, up_to_id: str) -> int:
        """The customer has seen our messages up to and including ``up_to_id``."""
        conversation = await self.conversations.find_one({"open_key": f"{channel}:{sender_id}"})
        if conversation is None:
            return 0
        result = await self.messages.update_many(
            {
                "conversation_id": conversation["_id"],
                "direction": Direction.OUTBOUND.value,
                "_id": {"$lte": up_to_id},
            },
            {"$set": {"read": True, "delivered": True}},
        )
        return result.modified_count

    async def unprocessed_inbound(self, limit: int = 1000) -> list[Message]:
        cursor = (
            self.messages.find({"direction": Direction.INBOUND.value, "processed": False})
            .sort("_id", ASCENDING)
            .limit(limit)
        )
        return [_from_doc(Message, d) async for d in cursor]

    async def start_turn(self, message_id: str) -> TurnStart | None:
        """Count a start of this message's turn (before it runs, so a turn that kills its process
        counts too); returns whether it is answered already and how many starts there have been."""
        doc = await self.messages.find_one_and_update(
            {"_id": message_id},
            {"$inc": {"turn_starts": 1}},
            projection={"processed": 1, "turn_starts": 1},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            return None
        return TurnStart(processed=bool(doc.get("processed")), turn_starts=int(doc.get("turn_starts", 1)))

    async def unprocessed_inbound_of(
        self, conversation_id: str, *, through: str, last_turn: str | None = None, limit: int = 100
    ) -> list[tuple[Message, TurnStart]]:
        """The conversation's customer messages stored up to ``through`` (itself included) and not
        yet answered, oldest first, each with its turn's starts so far: whether ``through`` is
        still unanswered comes with the same read. ``last_turn``: the message of the conversation's
        last written turn, included whatever its id if it is not marked processed yet."""
        # Equality only, sorted here: nx-27017 scans the whole collection for a range or a sort.
        cursor = self.messages.find(
            {"conversation_id": conversation_id, "direction": Direction.INBOUND.value, "processed": False}
        )
        found = [d async for d in cursor if str(d["_id"]) <= through or d["_id"] == last_turn]
        earlier = sorted(found, key=lambda d: str(d["_id"]))
        return [(_from_doc(Message, d), TurnStart(False, int(d.get("turn_starts", 0)))) for d in earlier[:limit]]

    async def history(self, conversation_id: str, limit: int = 200) -> list[Message]:
        cursor = self.messages.find({"conversation_id": conversation_id}).sort("_id", ASCENDING).limit(limit)
        staged = self._staged_understanding
        return [
            _from_doc(Message, {**d, "understanding": staged[d["_id"]]} if d["_id"] in staged else d)
            async for d in cursor
        ]

    async def count_messages(self, **query: Any) -> int:
        return await self.messages.count_documents(query)

    # -- events ----------------------------------------------------------------------------

    async def log_event(self, event: Event) -> None:
        await self.events.insert_one(event.model_dump())

    async def conversation_events(self, conversation_id: str, name: str) -> list[Event]:
        """The events of this name logged for the conversation, in stored order."""
        cursor = self.events.find({"conversation_id": conversation_id, "name": name})
        # A stored null is a missing field (the event's default), as the readers always took it.
        return [
            Event.model_validate({k: v for k, v in d.items() if k != "_id" and v is not None}) async for d in cursor
        ]

    async def log_events(self, events: Sequence[Event]) -> None:
        """Several events in one round trip."""
        if events:
            await self.events.insert_many([event.model_dump() for event in events], ordered=True)


PRIORITY_STEP = 1_000_000_000
"""Queue tickets one priority level is worth: more than any queue will ever hold."""


def queue_rank(ticket: int, priority: int) -> int:
    return ticket - priority * PRIORITY_STEP


def inbound_key(channel: str, channel_message_id: str) -> str:
    """The idempotency key of an inbound message (channel names hold no colon)."""
    return f"{channel}:{channel_message_id}"


def _linkable(profile: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in profile.items() if k in ("phone", "email") and v}


def _outbound_document(outbound: OutboundMessage, customer_id: str, sequence: int, key: str | None) -> dict[str, Any]:
    if key is not None:
        reply_key = f"push:{key}"
    elif outbound.in_reply_to:
        reply_key = f"reply:{outbound.in_reply_to}:{sequence}"
    else:
        reply_key = f"push:{new_id()}"
    return {
        "_id": new_id(),
        "conversation_id": outbound.conversation_id,
        "customer_id": customer_id,
        "channel": outbound.channel,
        "direction": Direction.OUTBOUND.value,
        "text": outbound.text,
        "quick_replies": [q.model_dump() for q in outbound.quick_replies],
        "channel_message_id": reply_key,
        "in_reply_to": outbound.in_reply_to,
        "author": outbound.author,
        "recipient_id": outbound.recipient_id,
        "created_at": utcnow(),
        "delivered": False,
        # Outbox state; an epoch-millisecond integer because nx-27017 turns $set datetimes into strings.
        "attempts": 0,
        "next_attempt_ms": 0,
        "failed": False,
        # Which sender is sending it now ("" nobody; never null: nx-27017 mismatches null in $or).
        "sending_owner": "",
        "sending_ms": 0,
    }
