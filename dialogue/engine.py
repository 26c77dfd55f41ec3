"""The turn-by-turn dialogue: route an understood message to a flow, or clarify, or hand off."""

from __future__ import annotations

from backoffice import HandoffDesk
from dialogue.language import reply_language
from dialogue.order_status import OrderStatusFlow
from dialogue.replies import TOPICS, say, topic_label
from dialogue.turn import Reply, Turn, TurnInput, TurnOutcome
from nlu.client import FALLBACK_INTENT
from shop import OrderService
from store.models import QuickReply

__all__ = ["DialogueEngine", "Reply", "TurnInput", "TurnOutcome"]

NOT_UNDERSTOOD_LIMIT = 2
"""Consecutive turns the bot may fail to understand before it hands off."""

NOT_UNDERSTOOD_INTENTS = frozenset({"out_of_scope", FALLBACK_INTENT})


def _detected_language(turn_input: TurnInput) -> str | None:
    extra = turn_input.parse.model_extra if turn_input.parse is not None else None
    language = (extra or {}).get("language")
    return language if isinstance(language, str) else None


class DialogueEngine:
    def __init__(self, orders: OrderService, handoff: HandoffDesk) -> None:
        self.handoff = handoff
        self.order_status = OrderStatusFlow(orders)

    async def respond(self, turn_input: TurnInput) -> TurnOutcome:
        turn = Turn(
            input=turn_input,
            language=reply_language(turn_input.text, _detected_language(turn_input), turn_input.language),
            slots=dict(turn_input.slots),
        )
        handed_off = await self._route(turn)
        return TurnOutcome(turn.replies, turn.slots, turn.language, turn.events, handed_off)

    async def _route(self, turn: Turn) -> bool:
        intent = turn.intent
        if intent == "human_handoff":
            return await self._hand_off(turn, reason="customer_asked")

        if self.order_status.is_waiting_for_answer(turn.slots) and await self.order_status.answer_pending(turn):
            turn.slots["failed_turns"] = 0
            return False

        if turn.input.parse is None or intent in NOT_UNDERSTOOD_INTENTS or intent is None:
            return await self._not_understood(turn)

        turn.slots["failed_turns"] = 0
        if intent == "order_status":
            await self.order_status.start(turn)
        elif intent == "greet":
            turn.slots.pop("active_flow", None)
            turn.say("greet", quick_replies=self._menu(turn.language))
        elif intent == "affirm":
            turn.say("affirm_open", quick_replies=self._menu(turn.language))
        elif intent in ("deny", "goodbye"):
            turn.slots.pop("active_flow", None)
            turn.say("goodbye")
        elif intent == "thanks":
            turn.say("thanks", quick_replies=self._menu(turn.language))
        elif intent == "inform" and turn.entity("order_id"):
            await self.order_status.start(turn)  # a bare order number: the likeliest wish is its status
        elif intent in TOPICS:
            return await self._hand_off(turn, reason="needs_agent", topic=intent)
        else:
            # An intent this version has no flow for yet: treat as not understood.
            return await self._not_understood(turn)
        return False

    async def _not_understood(self, turn: Turn) -> bool:
        failed = int(turn.slots.get("failed_turns", 0)) + 1
        turn.slots["failed_turns"] = failed
        nlu_down = turn.input.parse is None
        turn.event("not_understood", intent=turn.intent, nlu_down=nlu_down, count=failed)
        if failed >= NOT_UNDERSTOOD_LIMIT:
            return await self._hand_off(turn, reason="nlu_unavailable" if nlu_down else "not_understood")
        human = QuickReply(title=say("quick_human", turn.language), payload=say("quick_human", turn.language))
        turn.say("nlu_down" if nlu_down else "clarify", quick_replies=(human,))
        return False

    async def _hand_off(self, turn: Turn, *, reason: str, topic: str | None = None) -> bool:
        place = await self.handoff.enqueue(
            turn.input.conversation_id,
            reason=reason,
            channel=turn.input.channel,
            customer_id=turn.input.customer_id,
            intent=topic or turn.intent,
        )
        turn.slots.pop("active_flow", None)
        turn.slots.pop("requested_slot", None)
        turn.slots["failed_turns"] = 0
        if topic is not None:
            turn.say("handoff_topic", topic=topic_label(topic, turn.language), position=place.position)
        else:
            turn.say("handoff", position=place.position)
        return True

    @staticmethod
    def _menu(language: str) -> tuple[QuickReply, ...]:
        return (
            QuickReply(title=say("quick_order", language), payload=say("quick_order", language)),
            QuickReply(title=say("quick_human", language), payload=say("quick_human", language)),
        )
