"""The hand-off desk: conversations the bot gives up on wait here for an agent."""

from __future__ import annotations

from dataclasses import dataclass

from store import ConversationStore, Event


@dataclass(frozen=True, slots=True)
class QueuePlace:
    ticket: int
    position: int


class HandoffDesk:
    """Moves conversations to ``waiting_agent`` and tells the customer their place in line."""

    def __init__(self, store: ConversationStore) -> None:
        self.store = store

    async def enqueue(
        self, conversation_id: str, *, reason: str, channel: str, customer_id: str, intent: str | None = None
    ) -> QueuePlace:
        ticket = await self.store.hand_to_queue(conversation_id, reason)
        position = await self.store.queue_position(conversation_id) or 1
        await self.store.log_event(
            Event(
                name="handed_off",
                conversation_id=conversation_id,
                customer_id=customer_id,
                channel=channel,
                data={"reason": reason, "intent": intent, "queue_ticket": ticket, "position": position},
            )
        )
        return QueuePlace(ticket=ticket, position=position)
