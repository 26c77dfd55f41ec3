"""The store-backed services the phone line (``ivr/``) sees.

The voice channel (``ivr/``) must not know the database; this composition-root module gives it
the three narrow services it asks for, backed by the store and the shop: the caller directory
(customer, latest order, open after-sales request and voice-conversation state by phone number),
the voice feed (conversation state after a turn, what the dialogue completed during a call, the
call's transcript added to the agent's hand-off summary) and the metrics event log.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, Protocol

from ivr.channel import CallFacts
from ivr.menu import CallerInfo
from shop import MongoOrderService
from shop.aftersales import AfterSalesService
from store import Event
from store.models import Direction
from store.mongo import ConversationStore, stored_datetime


class StoreHolder(Protocol):
    store: ConversationStore | None


class VoiceServices:
    """Caller directory, voice feed and event log over the store (the gateway's ``StoreFeed``, bound
    when the store is up)."""

    def __init__(self, holder: StoreHolder) -> None:
        self.holder = holder
        self._indexed = False
        self._saves = 0

    def _bound(self) -> ConversationStore:
        if self.holder.store is None:
            raise RuntimeError("the gateway's store is not up yet")
        return self.holder.store

    async def lookup(self, phone: str, sender_id: str) -> CallerInfo:
        store = self._bound()
        customer = await store.customers.find_one({"identities.phone": phone})
        orders = await MongoOrderService(store.db).recent_for_customer(phone=phone, limit=10)
        order = orders[0] if orders else None
        request = None
        if customer is not None:
            requests = await AfterSalesService(store.db).for_customer(str(customer["_id"]), open_only=True)
            request = requests[-1] if requests else None
        conversation = await store.conversations.find_one({"open_key": f"voice:{sender_id}"})
        language = (conversation or {}).get("language") or (customer or {}).get("language")
        return CallerInfo(
            customer_id=str(customer["_id"]) if customer else None,
            language=str(language) if language else None,
            order_id=order.order_id if order else None,
            order_status=order.status.value if order else None,
            open_request_type=request.type.value if request else None,
            open_request_order_id=request.order_id if request else None,
            conversation_state=str(conversation["state"]) if conversation else None,
            order_ids=tuple(o.order_id for o in orders),
        )

    async def conversation_state(self, channel: str, sender_id: str) -> str | None:
        doc = await self._bound().conversations.find_one({"open_key": f"{channel}:{sender_id}"})
        return str(doc["state"]) if doc else None

    async def call_facts(self, conversation_id: str, since: datetime) -> CallFacts:
        store = self._bound()
        completed: list[str] = []
        cursor = store.events.find({"conversation_id": conversation_id, "name": "self_service_completed"})
        async for event in cursor:
            if _aware(event.get("at")) >= since:
                completed.append(str((event.get("data") or {}).get("flow", "")))
        intents = [
            str(m.understanding["intent"])
            for m in await store.history(conversation_id)
            if m.direction is Direction.INBOUND and m.understanding and _aware(m.created_at) >= since
        ]
        return CallFacts(tuple(completed), tuple(intents))

    async def note_call(self, conversation_id: str, call: dict[str, Any], since: datetime) -> None:
        store = self._bound()
        conversation = await store.get_conversation(conversation_id)
        if conversation is None:
            return
        transcript = []
        for message in await store.history(conversation_id):
            if _aware(message.created_at) < since or message.channel != "voice":
                continue
            line: dict[str, Any] = {
                "at": message.created_at.isoformat(),
                "from": "caller" if message.direction is Direction.INBOUND else message.author,
                "text": message.text,
            }
            for key in ("input", "transcript", "confidence", "digits", "digits_via"):
                if key in message.metadata:
                    line[key] = message.metadata[key]
            transcript.append(line)
        summary = dict(conversation.handoff_summary or {})
        summary["call"] = {**call, "transcript": transcript}
        await store.set_handoff_summary(conversation_id, summary)

    async def _indexes(self) -> None:
        if not self._indexed:
            db = self._bound().db
            await db["voice_calls"].create_index("saved_ms")
            await db["voice_call_attempts"].create_index([("number", 1), ("at_ms", 1)])
            self._indexed = True

    async def save_call(self, sid: str, record: dict[str, Any]) -> None:
        """A call's state in ``voice_calls`` (a whole-document replace: nx-27017 drops an upsert's
        filter ``_id`` from ``$set``). Now and then, calls older than a day are cleared away."""
        await self._indexes()
        calls = self._bound().db["voice_calls"]
        now_ms = int(time.time() * 1000)
        await calls.replace_one({"_id": sid}, {"_id": sid, **record, "saved_ms": now_ms}, upsert=True)
        self._saves += 1
        if self._saves % 50 == 1:  # a call saves a dozen times: this is about once per few calls
            await calls.delete_many({"saved_ms": {"$lt": now_ms - 24 * 3600 * 1000}})

    async def load_call(self, sid: str) -> dict[str, Any] | None:
        return await self._bound().db["voice_calls"].find_one({"_id": sid[:64]})

    async def attempt(self, number_key: str, window_seconds: float) -> int:
        """Record a call attempt in ``voice_call_attempts``; the attempts from the number within the window."""
        await self._indexes()
        attempts = self._bound().db["voice_call_attempts"]
        now_ms = int(time.time() * 1000)
        since_ms = now_ms - int(window_seconds * 1000)
        await attempts.insert_one({"number": number_key, "at_ms": now_ms})
        await attempts.delete_many({"number": number_key, "at_ms": {"$lt": since_ms}})
        return await attempts.count_documents({"number": number_key, "at_ms": {"$gte": since_ms}})

    async def record(
        self, name: str, data: dict[str, Any], *, conversation_id: str | None = None, customer_id: str | None = None
    ) -> None:
        await self._bound().log_event(
            Event(name=name, conversation_id=conversation_id, customer_id=customer_id, channel="voice", data=data)
        )


def _aware(value: Any) -> datetime:
    return stored_datetime(value) or datetime.min.replace(tzinfo=UTC)
