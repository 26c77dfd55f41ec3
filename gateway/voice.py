"""The store-backed services the phone line (``ivr/``) sees.

The voice channel (``ivr/``) must not know the database; this composition-root module gives it
the narrow services it asks for, backed by the store and the shop: the caller directory
(customer, latest order, open after-sales request and voice-conversation state by phone number),
the voice feed (conversation state after a turn, what the dialogue completed during a call, the
call's transcript added to the agent's hand-off summary), the call records, the metrics event log
and the dialogue's spoken prompts. Every query is the store's own (``store.mongo``,
``store.calls``): this module composes, it does not query collections.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from dialogue.render import SpokenPrompt, spoken_prompt
from dialogue.turn import Reply
from ivr.channel import CallFacts
from ivr.menu import CallerInfo
from shop import MongoOrderService
from shop.aftersales import AfterSalesService
from store import Event
from store.calls import CallRecords
from store.models import Direction, Message
from store.mongo import ConversationStore, stored_datetime


class StoreHolder(Protocol):
    store: ConversationStore | None


class VoiceServices:
    """Caller directory, voice feed and event log over the store (the gateway's ``StoreFeed``, bound
    when the store is up)."""

    def __init__(self, holder: StoreHolder) -> None:
        self.holder = holder
        self._calls: tuple[ConversationStore, CallRecords] | None = None

    def _bound(self) -> ConversationStore:
        if self.holder.store is None:
            raise RuntimeError("the gateway's store is not up yet")
        return self.holder.store

    def _records(self) -> CallRecords:
        store = self._bound()
        if self._calls is None or self._calls[0] is not store:
            self._calls = (store, CallRecords(store.db))
        return self._calls[1]

    async def lookup(self, phone: str, sender_id: str) -> CallerInfo:
        store = self._bound()
        customer = await store.customer_with_identity("phone", phone)
        orders = await MongoOrderService(store.db).recent_for_customer(phone=phone, limit=10)
        order = orders[0] if orders else None
        request = None
        if customer is not None:
            requests = await AfterSalesService(store.db).for_customer(customer.id, open_only=True)
            request = requests[-1] if requests else None
        conversation = await store.open_conversation_of("voice", sender_id)
        language = (conversation.language if conversation else None) or (customer.language if customer else None)
        return CallerInfo(
            customer_id=customer.id if customer else None,
            language=str(language) if language else None,
            order_id=order.order_id if order else None,
            order_status=order.status.value if order else None,
            open_request_type=request.type.value if request else None,
            open_request_order_id=request.order_id if request else None,
            conversation_state=conversation.state.value if conversation else None,
            order_ids=tuple(o.order_id for o in orders),
        )

    async def conversation_state(self, channel: str, sender_id: str) -> str | None:
        conversation = await self._bound().open_conversation_of(channel, sender_id)
        return conversation.state.value if conversation else None

    async def call_facts(self, conversation_id: str, since: datetime) -> CallFacts:
        store = self._bound()
        completed = [
            str(event.data.get("flow", ""))
            for event in await store.conversation_events(conversation_id, "self_service_completed")
            if _aware(event.at) >= since
        ]
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

    async def save_call(self, sid: str, record: dict[str, Any]) -> None:
        await self._records().save_call(sid, record)

    async def load_call(self, sid: str) -> dict[str, Any] | None:
        return await self._records().load_call(sid)

    async def attempt(self, number_key: str, window_seconds: float) -> int:
        return await self._records().attempt(number_key, window_seconds)

    def spoken(self, replies: Sequence[Message], language: str) -> SpokenPrompt:
        """The dialogue's spoken prompt for a turn's replies (the phone line does not import the dialogue)."""
        return spoken_prompt([Reply(m.text, tuple(m.quick_replies)) for m in replies], language)

    async def record(
        self, name: str, data: dict[str, Any], *, conversation_id: str | None = None, customer_id: str | None = None
    ) -> None:
        await self._bound().log_event(
            Event(name=name, conversation_id=conversation_id, customer_id=customer_id, channel="voice", data=data)
        )


def _aware(value: Any) -> datetime:
    return stored_datetime(value) or datetime.min.replace(tzinfo=UTC)
