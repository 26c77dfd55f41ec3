"""Policy questions, answered from the editable after-sales knowledge base, with "猜你想问":
questions customers usually have next, chosen by the state of their latest order."""

from __future__ import annotations

from typing import ClassVar

import intents
from dialogue.flows.base import Flow
from dialogue.flows.followup import ACTION_WORDS
from dialogue.replies import register
from dialogue.turn import Reply, Turn
from nlu.keywords import keyword_intent
from shop import Order

register(
    {
        "policy_unknown": {
            "zh": "抱歉，这个问题我暂时没有找到准确的规定。您可以换个问法，或者转人工客服为您解答。",
            "en": "Sorry, I couldn't find the rule for that. You could ask another way, or talk to an agent.",
        },
    }
)

SUGGESTIONS = 3


class PolicyFlow(Flow):
    name: ClassVar[str] = "policy_question"
    intents: ClassVar[tuple[str, ...]] = ("policy_question",)
    needs_order: ClassVar[bool] = False
    informational: ClassVar[bool] = True

    async def proceed(self, turn: Turn, order: Order | None) -> None:
        turn.finish()
        knowledge = self.context.knowledge
        found = knowledge.answer(turn.text_now, turn.language) if knowledge is not None else None
        if found is None and (task := self._task_asked(turn)) is not None:
            # "…way too big for my kitchen, I'd like to return it": no rule was asked about, a task was.
            turn.event("policy_read_as_task", intent=task)
            turn.redirect = task
            return
        if found is None:
            failed = int(turn.slots.get("failed_turns", 0)) + 1
            turn.slots["failed_turns"] = failed
            turn.event("knowledge_miss", text=turn.text_now[:200])
            if failed >= 2:
                turn.request_handoff("knowledge_miss")
                return
            turn.say("policy_unknown", quick_replies=(turn.choice("quick_human"),))
            turn.act("clarify")
            return
        entry = found.entry
        status = await self._latest_order_status(turn)
        suggestions = [
            s
            for s in (knowledge.suggestions(status, turn.language, limit=SUGGESTIONS + 1) if knowledge else [])
            if s.id != entry.id
        ][:SUGGESTIONS]
        turn.replies.append(
            Reply(
                entry.answer_in(turn.language),
                tuple(turn.choice("order_choice", summary=s.question_in(turn.language)) for s in suggestions),
            )
        )
        about = self.orders_meant(turn, await self.customer_orders(turn))
        turn.act("answer", order=about[0].order_id if len(about) == 1 else None)
        turn.event("self_service_completed", flow=self.name, entry=entry.id, score=round(found.score, 3))

    @staticmethod
    def _task_asked(turn: Turn) -> str | None:
        """The after-sales task a message the knowledge base has no rule for asks to be done, by its
        own words ("I'd like to return it", "帮我退了"), or None."""
        if not ACTION_WORDS.search(turn.text_now):
            return None
        task = keyword_intent(turn.text_now, has_order_id=False)
        return task if task in intents.names("request") and task != PolicyFlow.name else None

    async def _latest_order_status(self, turn: Turn) -> str | None:
        last = turn.focus.get("order_id")
        if last and (order := await self.orders.get(str(last))) is not None:
            return order.status.value
        identities = turn.input.identities
        if not (identities.get("phone") or identities.get("email")):
            return None
        recent = await self.orders.recent_for_customer(
            phone=identities.get("phone"), email=identities.get("email"), limit=1
        )
        return recent[0].status.value if recent else None
