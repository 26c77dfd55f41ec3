"""The turn-by-turn dialogue: continue the active flow, or start the flow the intent asks for,
or clarify, or hand off.

Hand-off triggers: the customer asks; two turns in a row not understood; anger or a threat to
complain; a flow that needs a person (intercepting a parcel, failed verification, a repeated
urge). A photo or a shared contact with no text is an answer, never "not understood".
"""

from __future__ import annotations

from typing import Any

import intents
from dialogue.emotion import detect_emotion
from dialogue.flows import FLOW_CLASSES
from dialogue.flows.base import Flow, FlowContext, wants_to_cancel
from dialogue.language import reply_language
from dialogue.replies import register, say
from dialogue.survey import answer_survey
from dialogue.turn import Reply, Turn, TurnInput, TurnOutcome
from nlu.client import FALLBACK_INTENT
from store.models import QuickReply

__all__ = ["DialogueEngine", "Reply", "TurnInput", "TurnOutcome"]

NOT_UNDERSTOOD_LIMIT = 2
"""Consecutive turns the bot may fail to understand before it hands off."""

NOT_UNDERSTOOD_INTENTS = frozenset({"out_of_scope", FALLBACK_INTENT})

register(
    {
        "media_received": {
            "zh": "已收到您发送的文件。请问是关于哪方面的问题呢？",
            "en": "Got your file. What is it about?",
        },
        "contact_received": {
            "zh": "已收到您的联系方式，已与您的账户关联。请问有什么可以帮您？",
            "en": "Thanks, your number is now linked to your account. How can I help?",
        },
        "sorry_prefix": {
            "zh": "非常抱歉给您带来不好的体验，我们一定尽力帮您解决。",
            "en": "I'm very sorry for the trouble; let's get this sorted.",
        },
        "handoff_upset": {
            "zh": "非常抱歉给您带来不好的体验！已为您优先转接人工客服，"
            "您当前排在第 {position} 位，客服会尽快在这里回复您。",
            "en": "I'm very sorry about this. I'm putting you through to an agent with priority; you are number "
            "{position} in the queue and they'll reply here shortly.",
        },
        "handoff_urge": {
            "zh": "您已多次催促，已为您转接人工客服专门跟进，您当前排在第 {position} 位，请稍候。",
            "en": "You've chased this more than once, so an agent will follow it up personally. You are number "
            "{position} in the queue.",
        },
        "handoff_redirect": {
            "zh": "已为您转接人工客服联系快递{what}，您当前排在第 {position} 位，请稍候。",
            "en": "An agent will contact the courier to {what} it. You are number {position} in the queue.",
        },
        "what_redirect": {"zh": "改派", "en": "redirect"},
        "what_intercept": {"zh": "拦截", "en": "intercept"},
        "quick_return": {"zh": "退货退款", "en": "Return and refund"},
        "quick_refund": {"zh": "申请退款", "en": "Refund"},
    }
)


def _detected_language(turn_input: TurnInput) -> str | None:
    extra = turn_input.parse.model_extra if turn_input.parse is not None else None
    language = (extra or {}).get("language")
    return language if isinstance(language, str) else None


class DialogueEngine:
    def __init__(self, context: FlowContext) -> None:
        self.context = context
        self.handoff = context.handoff
        self.flows: dict[str, Flow] = {cls.name: cls(context) for cls in FLOW_CLASSES}
        self.by_intent: dict[str, Flow] = {intent: flow for flow in self.flows.values() for intent in flow.intents}

    async def respond(self, turn_input: TurnInput) -> TurnOutcome:
        turn = Turn(
            input=turn_input,
            language=reply_language(turn_input.text, _detected_language(turn_input), turn_input.language),
            slots=dict(turn_input.slots),
        )
        surveys = self.context.surveys
        if surveys is not None and turn_input.text and await answer_survey(turn, surveys):
            return TurnOutcome(turn.replies, turn.slots, turn.language, turn.events, False)
        handed_off = await self._route(turn)
        if not handed_off and turn.redirect and turn.redirect in self.flows:
            target, turn.redirect = turn.redirect, None
            await self.flows[target].start(turn)
        if not handed_off and turn.handoff is not None:
            reason, details = turn.handoff
            handed_off = await self._hand_off(turn, reason=reason, details=details)
        # Numbered answers ("2") map back to the last quick replies offered (see resolve_choice).
        offered = turn.replies[-1].quick_replies if turn.replies else ()
        if offered:
            turn.slots["choices"] = [q.payload for q in offered]
        else:
            turn.slots.pop("choices", None)
        return TurnOutcome(turn.replies, turn.slots, turn.language, turn.events, handed_off)

    async def _route(self, turn: Turn) -> bool:
        if not turn.input.text:
            return await self._without_text(turn)
        intent = turn.intent
        # A quick reply the active flow offered ("转人工改派") is the flow's to answer.
        offered = turn.form is not None and turn.input.text in (turn.slots.get("choices") or [])
        if intent == "human_handoff" and not offered:
            return await self._hand_off(turn, reason="customer_asked")

        emotion = detect_emotion(turn.input.text)
        if emotion.level == "angry" or emotion.complaint_threat:
            turn.event("negative_emotion", level=emotion.level, threat=emotion.complaint_threat, cues=emotion.cues)
            if intent == "complaint":
                await self.flows["complaint"].start(turn)  # a complaint is always a ticket, angry or not
            return await self._hand_off(
                turn,
                reason="negative_emotion",
                details={"level": emotion.level, "complaint_threat": emotion.complaint_threat, "cues": emotion.cues},
            )
        if emotion.level == "negative":
            turn.event("negative_emotion", level=emotion.level, threat=False, cues=emotion.cues)
            turn.say("sorry_prefix")

        form = turn.form
        if form is not None:
            if wants_to_cancel(turn):
                turn.finish()
                turn.event("flow_cancelled", flow=form["flow"], step=form["step"])
                turn.say("flow_cancelled")
                return False
            flow = self.flows.get(form["flow"])
            if flow is None:  # a flow from an older version: start afresh
                turn.finish()
            elif await flow.resume(turn):
                turn.slots["failed_turns"] = 0
                return False

        if turn.input.parse is None or intent in NOT_UNDERSTOOD_INTENTS or intent is None:
            return await self._not_understood(turn)

        turn.slots["failed_turns"] = 0
        started = self.by_intent.get(intent)
        if started is None and intent == "inform" and turn.entity("order_id"):
            started = self.flows["order_status"]  # a bare order number: the likeliest wish is its status
        if started is not None:
            turn.finish()
            await started.start(turn)
        elif intent == "greet":
            turn.finish()
            turn.say("greet", quick_replies=self._menu(turn))
        elif intent == "affirm":
            turn.say("affirm_open", quick_replies=self._menu(turn))
        elif intent in ("deny", "goodbye"):
            if turn.form is not None:
                turn.finish()
                turn.say("flow_cancelled")
            else:
                turn.say("goodbye")
        elif intent == "thanks":
            turn.say("thanks", quick_replies=self._menu(turn))
        else:
            return await self._not_understood(turn)
        return False

    async def _without_text(self, turn: Turn) -> bool:
        """A photo or a shared contact on its own: the answer to the open question, or noted."""
        form = turn.form
        if form is not None:
            flow = self.flows.get(form["flow"])
            if flow is not None and await flow.resume(turn):
                return False
        if turn.input.attachments_refused and not turn.input.attachments:
            return False  # the gateway tells the customer what files are accepted; nothing to add
        if turn.input.attachments:
            pending = list(turn.slots.get("pending_media", []))
            turn.slots["pending_media"] = [*pending, *turn.media_ids][-10:]
            turn.event("media_received", media=turn.media_ids)
            turn.say("media_received", quick_replies=self._claims_menu(turn))
        else:
            turn.say("contact_received", quick_replies=self._menu(turn))
        return False

    async def _not_understood(self, turn: Turn) -> bool:
        failed = int(turn.slots.get("failed_turns", 0)) + 1
        turn.slots["failed_turns"] = failed
        nlu_down = turn.input.nlu_down or turn.input.parse is None
        turn.event("not_understood", intent=turn.intent, nlu_down=nlu_down, count=failed)
        if failed >= NOT_UNDERSTOOD_LIMIT:
            return await self._hand_off(turn, reason="nlu_unavailable" if nlu_down else "not_understood")
        if nlu_down:  # a numbered menu the keyword reader understands ("1", "查询订单", "转人工")
            turn.say("nlu_down", quick_replies=self._menu(turn))
        else:
            turn.say("clarify", quick_replies=(turn.choice("quick_human"),))
        return False

    async def _hand_off(
        self, turn: Turn, *, reason: str, topic: str | None = None, details: dict[str, Any] | None = None
    ) -> bool:
        form = turn.form
        place = await self.handoff.enqueue(
            turn.input.conversation_id,
            reason=reason,
            channel=turn.input.channel,
            customer_id=turn.input.customer_id,
            intent=topic or turn.intent,
            slots=turn.slots,
            details={**(details or {}), **({"flow": form["flow"], "step": form["step"]} if form else {})},
        )
        turn.finish()
        turn.slots["failed_turns"] = 0
        turn.slots.pop("pending_media", None)
        if reason == "negative_emotion":
            turn.say("handoff_upset", position=place.position)
        elif reason == "repeated_urge":
            turn.say("handoff_urge", position=place.position)
        elif reason in ("order_redirect", "order_intercept"):
            what = turn.text("what_redirect" if reason == "order_redirect" else "what_intercept")
            turn.say("handoff_redirect", what=what, position=place.position)
        elif topic is not None:
            turn.say("handoff_topic", topic=intents.topic(topic, turn.language), position=place.position)
        else:
            turn.say("handoff", position=place.position)
        return True

    @staticmethod
    def _menu(turn: Turn) -> tuple[QuickReply, ...]:
        return (turn.choice("quick_order"), turn.choice("quick_human"))

    @staticmethod
    def _claims_menu(turn: Turn) -> tuple[QuickReply, ...]:
        return (
            QuickReply(title=say("quick_damage", turn.language), payload=say("quick_damage", turn.language)),
            turn.choice("quick_return"),
            turn.choice("quick_human"),
        )
