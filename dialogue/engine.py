"""The turn-by-turn dialogue: each request of the message is served in order — the answer to the
active flow's question, a question about a request the customer already has, a follow-up about
what the conversation is about, or the flow the intent asks for — then small talk, clarifying, or
handing off.

Hand-off triggers: the customer asks for a person; two turns in a row not understood; a complaint
from an angry customer (the complaint ticket is opened first, and the customer goes ahead in the
queue); a flow that needs a person (intercepting a parcel, failed verification, a repeated urge).
Anger alone is answered with an apology and the help asked for. A photo or a shared contact with no
text is an answer, never "not understood".

Replies are written in the variety the customer writes (:mod:`dialogue.variety`), and what the bot
did is recorded with the message (:attr:`TurnOutcome.acted`).
"""

from __future__ import annotations

from typing import Any, cast

import intents
import textpatterns
from dialogue.emotion import Emotion, detect_emotion
from dialogue.flows import FLOW_CLASSES
from dialogue.flows.base import Flow, FlowContext, wants_to_cancel
from dialogue.flows.claims import LATE, PRICE_DROP
from dialogue.flows.followup import FollowUpFlow
from dialogue.flows.requests import RequestsFlow
from dialogue.flows.returns import CAN_RETURN, GoodsFlow
from dialogue.replies import register, say
from dialogue.survey import answer_survey
from dialogue.turn import Ask, Reply, Turn, TurnInput, TurnOutcome
from dialogue.variety import ENGLISH, SIMPLIFIED, choose_variety, language_of, render
from nlu.keywords import KEYWORDS, keyword_intent
from nlu.result import FALLBACK_INTENT
from store.models import QuickReply

__all__ = ["DialogueEngine", "Reply", "TurnInput", "TurnOutcome"]

NOT_UNDERSTOOD_LIMIT = 2
"""Consecutive turns the bot may fail to understand before it hands off."""

NOT_UNDERSTOOD_INTENTS = frozenset({"out_of_scope", FALLBACK_INTENT})
_PERSON = textpatterns.compile(
    r"转人工|轉人工|人工客服|找人工|要人工|给我人工|給我人工|真人|搵人|搵個人|活人|"
    r"real person|a human|talk to (?:an? )?(?:agent|person|human)|speak to (?:an? )?(?:agent|person|human)",
    textpatterns.IGNORECASE,
)
"""Asking for a person in so many words: met even when the NLU reads the message as something else."""
_URGE = textpatterns.compile(r"催|hurry|chase|push the|expedite|speed (?:it|this) up", textpatterns.IGNORECASE)
_URGE_READ_AS = frozenset(intents.names("request")) - {"urge", "complaint"}
"""Intents an urge about a request is often read as ("催下我那个换货" is not a new exchange)."""
GIVES_BACK = textpatterns.compile(
    r"(?:不要了|不想要了|唔要|用不上).{0,8}(?:退|refund|return)|"
    r"(?:don'?t|no longer) (?:want|need) .{0,30}(?:refund|return)",
    textpatterns.IGNORECASE,
)
"""Giving goods back ("音箱不要了 帮我退了"), which a classifier may take for withdrawing a request."""
_DROPS_THE_ORDER = textpatterns.compile(
    r"(?:不要了|不想要了|唔要|唔想要).{0,8}(?:取消|cancel)", textpatterns.IGNORECASE
)
""""202611230045不要了 取消吧", "电热毯那个单子不要了 帮我取消": an order (by number or product) and
its cancellation, not a request taken back."""
_THANKS = textpatterns.compile(r"谢|謝|多谢|唔该|唔該|thank|thx", textpatterns.IGNORECASE)
_GROUNDS = frozenset(intents.names("request")) - {"compensation"}
"""A clause saying the parcel was late, read as any task, beside a claim for compensation it grounds."""
SECOND_GUESS_CONFIDENCE = 0.15
"""How sure the classifier must be of a task its top guess (details, or nothing) hid, when the
message's own words name that task."""
_EXCHANGE_WORD = textpatterns.compile(r"换|換|exchange|swap", textpatterns.IGNORECASE)
PRIORITY_UPSET = 10
"""Queue priority of an angry customer put through to an agent (ordinary hand-offs are 0)."""

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


def _extra(turn_input: TurnInput) -> dict[str, Any]:
    return dict(turn_input.parse.model_extra or {}) if turn_input.parse is not None else {}


def _grounds_folded(asks: list[Ask]) -> list[Ask]:
    """Clauses saying the parcel was late ("还有这单也太慢了吧 下单一个多礼拜才到", read as any task),
    folded into the compensation claim they ground (the next one, else the one before); the
    message's other asks ("价保审核完了没") stay as they are."""
    claims = [n for n, a in enumerate(asks) if a.intent == "compensation" and not _is_ground(a)]
    if not claims:
        return asks
    folded = list(asks)
    grounds: dict[int, list[int]] = {}
    for n, ask in enumerate(asks):
        if _is_ground(ask) and n not in claims:
            target = next((c for c in claims if c > n), claims[-1])
            grounds.setdefault(target, []).append(n)
    for target, found in grounds.items():
        claim = asks[target]
        text = " ".join([*(asks[n].text for n in found), claim.text])
        entities = tuple(e for n in [*found, target] for e in asks[n].entities)
        folded[target] = Ask(text, "compensation", claim.confidence, entities)
    dropped = {n for found in grounds.values() for n in found}
    return [a for n, a in enumerate(folded) if n not in dropped]


def _is_ground(ask: Ask) -> bool:
    return ask.intent in _GROUNDS and LATE.search(ask.text) is not None


def asks_of(turn_input: TurnInput) -> list[Ask]:
    """The message's requests in order (the NLU's ``requests``), or the whole message as one."""
    parse = turn_input.parse
    if parse is None:
        return [Ask(turn_input.text, None, 0.0)]
    raw = getattr(parse, "requests", None) or _extra(turn_input).get("requests") or []
    asks = []
    for item in raw:
        data = item if isinstance(item, dict) else item.model_dump()
        intent = data.get("intent") or {}
        entities = tuple(e if isinstance(e, dict) else e.model_dump() for e in data.get("entities") or [])
        asks.append(Ask(str(data.get("text") or ""), intent.get("name"), float(intent.get("confidence") or 0.0),
                        entities))  # fmt: skip
    whole = tuple(e.model_dump() for e in parse.entities)
    if len(asks) < 2:
        return [Ask(turn_input.text, parse.intent_name, parse.intent.confidence, whole)]
    if any(a.intent == "compensation" for a in asks):
        asks = _grounds_folded(asks)
        if len(asks) == 1:
            # "付款一周才发货 太慢了 要求赔偿": the delay is the claim's ground, not a request of its own.
            return [Ask(turn_input.text, "compensation", asks[0].confidence, whole)]
    if any(a.intent == "withdraw_request" for a in asks) and RequestsFlow.changes_one(turn_input.text):
        # "申请了退货，可以改成换货吗？换 L 号": one change to a request, not a withdrawal and a new exchange.
        confidence = max(a.confidence for a in asks if a.intent == "withdraw_request")
        return [Ask(turn_input.text, "withdraw_request", confidence, whole)]
    return _continuations_joined(asks)


_PICKUP = textpatterns.compile(
    r"来拿|來拿|来取|來取|上门取|上門取|取件|来收|來收|收走|拿走|嚟攞|pick(?:\s*it)?\s*up|collect",
    textpatterns.IGNORECASE,
)
_GOODS_BACK = frozenset({"return_refund", "exchange"})
_IF_NOT = textpatterns.compile(
    r"^\W*(?:没有的话|沒有的話|如果没有|如果沒有|没有就|沒有就|要是没有|要是沒有|冇嘅话|冇嘅話|未有嘅話|"
    r"不然的话|不然|否则|否則|if not\b|otherwise\b)",
    textpatterns.IGNORECASE,
)


def _continuations_joined(asks: list[Ask]) -> list[Ask]:
    """Clauses that finish the request before them: a pick-up time after a return or exchange
    ("頂帽想退 聽日下晝嚟攞得唔得") is its pick-up, not a delivery-time change; "没有的话帮我申请"
    after "我申请价保了吗" is that request, wanted if it does not exist yet."""
    joined: list[Ask] = []
    for ask in asks:
        before = joined[-1] if joined else None
        pickup = (
            before is not None
            and before.intent in _GOODS_BACK
            and ask.intent == "change_delivery_time"
            and _PICKUP.search(ask.text) is not None
        )
        if before is not None and (pickup or _IF_NOT.search(ask.text)):
            joined[-1] = Ask(f"{before.text} {ask.text}", before.intent, before.confidence,
                             before.entities + ask.entities)  # fmt: skip
        else:
            joined.append(ask)
    return joined


class DialogueEngine:
    def __init__(self, context: FlowContext) -> None:
        self.context = context
        self.handoff = context.handoff
        self.flows: dict[str, Flow] = {cls.name: cls(context) for cls in FLOW_CLASSES}
        self.by_intent: dict[str, Flow] = {intent: flow for flow in self.flows.values() for intent in flow.intents}
        self.requests = cast(RequestsFlow, self.flows["requests"])
        self.follow_up = cast(FollowUpFlow, self.flows["follow_up"])

    async def respond(self, turn_input: TurnInput) -> TurnOutcome:
        slots = dict(turn_input.slots)
        number = int(slots.get("turn_number", 0)) + 1
        slots["turn_number"] = number
        extra = _extra(turn_input)
        variety = choose_variety(
            turn_input.raw_text or turn_input.text,
            detected_language=extra.get("language") if isinstance(extra.get("language"), str) else None,
            traditional=bool(extra.get("traditional")),
            regional=[str(v) for v in extra.get("varieties") or []],
            previous=slots.get("variety"),
        )
        slots["variety"] = variety
        if turn_input.spoken and variety != ENGLISH:
            variety = SIMPLIFIED  # a phone prompt is heard, not read: its own wording, no conversion
        turn = Turn(input=turn_input, language=language_of(variety), slots=slots, variety=variety, number=number)
        surveys = self.context.surveys
        if surveys is not None and turn_input.text and await answer_survey(turn, surveys):
            return self._outcome(turn, handed_off=False)
        handed_off = await self._message(turn)
        # Numbered answers ("2") map back to the last quick replies offered (see resolve_choice).
        offered = turn.replies[-1].quick_replies if turn.replies else ()
        if offered:
            turn.slots["choices"] = [q.payload for q in offered]
        else:
            turn.slots.pop("choices", None)
        return self._outcome(turn, handed_off=handed_off)

    def _outcome(self, turn: Turn, *, handed_off: bool) -> TurnOutcome:
        replies = [
            Reply(
                render(r.text, turn.variety),
                tuple(QuickReply(title=render(q.title, turn.variety), payload=q.payload) for q in r.quick_replies),
            )
            for r in turn.replies
        ]
        return TurnOutcome(replies, turn.slots, turn.language, turn.events, handed_off, turn.acted, turn.variety)

    # -- the message ------------------------------------------------------------------------------

    async def _message(self, turn: Turn) -> bool:
        if not turn.input.text:
            return await self._without_text(turn)
        asks = asks_of(turn.input)
        turn.several_asks = len(asks) > 1
        emotion = detect_emotion(turn.input.text)
        if emotion.level != "calm" or emotion.complaint_threat:
            turn.event("negative_emotion", level=emotion.level, threat=emotion.complaint_threat, cues=emotion.cues)
        if await self._upset_or_asks_for_a_person(turn, asks, emotion):
            return True
        if emotion.level in ("negative", "angry"):
            turn.say("sorry_prefix")
        for ask in asks:
            turn.ask = ask
            if await self._serve(turn):
                return True
            redirect, turn.redirect = turn.redirect, None
            if redirect and (target := self.flows.get(redirect) or self.by_intent.get(redirect)):
                await target.start(turn, order_id=turn.slots.pop("redirect_order", None))
            if turn.handoff is not None:
                reason, details = turn.handoff
                turn.handoff = None
                return await self._hand_off(turn, reason=reason, details=details)
        return False

    async def _upset_or_asks_for_a_person(self, turn: Turn, asks: list[Ask], emotion: Emotion) -> bool:
        """A request for a person is met at once (ahead in the queue when the customer is angry);
        an angry complaint is logged as a ticket on the order it names first, then handed over."""
        angry = emotion.level == "angry"
        offered = turn.form is not None and turn.input.text in (turn.slots.get("choices") or [])
        wants_person = (any(a.intent == "human_handoff" for a in asks) or bool(_PERSON.search(turn.input.text))) and (
            not offered
        )
        complaint = next((a for a in asks if a.intent == "complaint"), None)
        if not wants_person and not (angry and (complaint is not None or emotion.complaint_threat)):
            return False
        if complaint is not None or (angry and emotion.complaint_threat):
            turn.ask = Ask(turn.input.text, "complaint", complaint.confidence if complaint else 1.0,
                           complaint.entities if complaint else asks[0].entities)  # fmt: skip
            turn.finish()
            await self.flows["complaint"].start(turn)
            turn.finish()  # the agent takes the details from here
        details = {"level": emotion.level, "complaint_threat": emotion.complaint_threat, "cues": emotion.cues}
        reason = "customer_asked" if wants_person else "negative_emotion"
        upset = (
            angry
            or (complaint is not None and wants_person)
            or (emotion.level == "negative" and emotion.complaint_threat)
        )
        return await self._hand_off(turn, reason=reason, details=details, priority=PRIORITY_UPSET if upset else 0)

    async def _serve(self, turn: Turn) -> bool:
        """One request of the message; True when the conversation went to an agent."""
        if not turn.text_now.strip():
            return False
        form = turn.form
        if form is not None:
            flow = self.flows.get(form["flow"])
            started = await self._flow_for(turn)
            if flow is None:  # a flow from an older version: start afresh
                turn.finish()
            elif wants_to_cancel(turn) and started is not None and not started.informational and started is not flow:
                # "先不取消了 把地址改成…": the pending question is dropped, the new task starts.
                turn.event("flow_cancelled", flow=form["flow"], step=form["step"])
                turn.dropped = dict(form["data"])
                turn.finish()
            elif self._closes_with_thanks(turn, form):
                # "行 知道了 谢了啊" after an answer: the customer has what they came for; the
                # question the bot added is dropped rather than answered for them.
                turn.finish()
                turn.event("flow_cancelled", flow=form["flow"], step=form["step"], reason="thanks")
                turn.say("thanks", quick_replies=self._menu(turn))
                turn.act("thank")
                return False
            elif wants_to_cancel(turn) and form.get("step") != "confirm":
                turn.dropped = dict(form["data"])
                turn.finish()
                turn.event("flow_cancelled", flow=form["flow"], step=form["step"])
                turn.say("flow_cancelled")
                turn.act("cancelled")
                return False
            elif await flow.resume(turn):
                turn.slots["failed_turns"] = 0
                return False

        claim = await self.requests.claims(turn)
        if claim is not None:
            turn.slots["failed_turns"] = 0
            await self._informational(turn, self.requests, lambda: self.requests.serve(turn, *claim))
            return False

        question = self.follow_up.question_of(turn)
        if question is not None and (target := await self.follow_up.target(turn)) is not None:
            kept = turn.form
            if await self.follow_up.answer(turn, question, *target):
                turn.slots["failed_turns"] = 0
                if kept is not None and turn.form is None:
                    turn.slots["form"] = kept
                return False

        intent = turn.intent
        if turn.input.parse is None and not turn.input.nlu_down:
            return await self._not_understood(turn)
        started = await self._flow_for(turn)
        if started is not None:
            turn.slots["failed_turns"] = 0
            if started.informational:
                await self._informational(turn, started, lambda: started.start(turn))
            else:
                turn.finish()
                await started.start(turn)
            return False
        if intent in NOT_UNDERSTOOD_INTENTS or intent is None:
            return await self._not_understood(turn)
        turn.slots["failed_turns"] = 0
        if intent == "greet":
            if not turn.several_asks:
                turn.say("greet", quick_replies=self._menu(turn))
            turn.act("greet")
        elif intent == "affirm":
            turn.say("affirm_open", quick_replies=self._menu(turn))
            turn.act("clarify")
        elif intent in ("deny", "goodbye"):
            turn.finish()
            turn.say("goodbye")
            turn.act("goodbye")
        elif intent == "thanks":
            turn.say("thanks", quick_replies=self._menu(turn))
            turn.act("thank")
        elif intent == "inform":
            return await self._not_understood(turn)
        else:
            return await self._not_understood(turn)
        return False

    async def _informational(self, turn: Turn, flow: Flow, serve: Any) -> None:
        """Answer without losing the task under way: the active flow's form is kept, and its
        question stands (a yes to it is asked again, naming it, as it is no longer fresh)."""
        kept = turn.form
        turn.finish()
        await serve()
        if kept is not None and turn.form is None:
            turn.slots["form"] = kept

    async def _flow_for(self, turn: Turn) -> Flow | None:
        """The flow this request starts, from its intent and, where customers' words are more
        telling than the intent, from them: a price drop is price protection; "can I still return
        my <item>?" is about returning that item."""
        intent = turn.intent
        text = turn.text_now
        if _URGE.search(text) and intent in _URGE_READ_AS:
            return self.flows["urge"]
        if (
            PRICE_DROP.search(text)
            and intent not in ("complaint", "human_handoff")
            and (intent != "policy_question" or await self._names_own_item(turn))
        ):
            return self.flows["price_protection"]
        read_as = self.by_intent.get(intent or "")
        if (
            (read_as is None or read_as.informational or isinstance(read_as, GoodsFlow))
            and CAN_RETURN.search(text)
            and (await self._names_own_item(turn) or Flow.follows_focus(self.flows["return_refund"], turn))
        ):
            return self.flows["exchange" if _EXCHANGE_WORD.search(text) else "return_refund"]
        if (
            intent == "withdraw_request"
            and (
                GIVES_BACK.search(text)
                or (_DROPS_THE_ORDER.search(text) and (turn.entity("order_id") or await self._names_own_item(turn)))
            )
            and not self.requests.names_a_withdrawal(turn)
        ):
            # "那个音箱我不要了 帮我退了": giving the goods back (or dropping the order), not taking
            # a request back.
            return self.flows["refund"]
        if intent in self.by_intent:
            read_as = self.by_intent[intent]
            if not read_as.informational and (named := self._task_the_words_name(turn, intent)) is not None:
                return self.by_intent[named]  # "could I get an invoice …" read as compensation (invoice 0.17)
            return read_as
        if intent in ("inform", FALLBACK_INTENT) and (keyword := self._keyword_second_guess(turn)) is not None:
            return self.by_intent[keyword]
        if intent == "inform" and turn.entity("order_id"):
            return self.flows["order_status"]  # a bare order number: the likeliest wish is its status
        return None

    @staticmethod
    def _closes_with_thanks(turn: Turn, form: dict[str, Any]) -> bool:
        """Thanks and nothing else, to a question that is not a confirmation."""
        return (
            turn.intent == "thanks"
            and not turn.several_asks
            and form.get("step") != "confirm"
            and not (turn.ask is not None and turn.ask.entities)
            and _THANKS.search(turn.text_now) is not None
        )

    def _task_the_words_name(self, turn: Turn, intent: str) -> str | None:
        """Another task the message's own words name, where none of the classified task's words
        appear and the classifier still gives it a second guess."""
        keyword = self._keyword_second_guess(turn)
        if keyword is None or keyword == intent:
            return None
        lowered = turn.text_now.lower()
        own = next((words for name, words in KEYWORDS if name == intent), None)
        if own is None or any(word in lowered for word in own):
            return None  # no words of its own to miss (urge), or they are there
        return keyword

    def _keyword_second_guess(self, turn: Turn) -> str | None:
        """A task the classifier ranked second (≥ :data:`SECOND_GUESS_CONFIDENCE`) and the message's
        own task words name too: "开发票 抬头… 税号…" reads as details (inform) but asks for an invoice."""
        parse = turn.input.parse
        if parse is None or turn.several_asks:
            return None
        keyword = keyword_intent(turn.text_now, has_order_id=False)
        if keyword is None or keyword not in self.by_intent:
            return None
        ranked = {i.name: i.confidence for i in parse.intent_ranking[:4]}
        return keyword if ranked.get(keyword, 0.0) >= SECOND_GUESS_CONFIDENCE else None

    async def _names_own_item(self, turn: Turn) -> bool:
        orders = await self.flows["order_status"].customer_orders(turn)
        return bool(self.flows["order_status"].orders_meant(turn, orders))

    # -- without words, not understood, handed off ------------------------------------------------------

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
            turn.act("ask")
        else:
            turn.say("contact_received", quick_replies=self._menu(turn))
            turn.act("ask")
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
        turn.act("clarify")
        return False

    async def _hand_off(
        self,
        turn: Turn,
        *,
        reason: str,
        topic: str | None = None,
        details: dict[str, Any] | None = None,
        priority: int = 0,
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
            priority=priority,
        )
        turn.finish()
        turn.slots["failed_turns"] = 0
        turn.slots.pop("pending_media", None)
        if priority > 0:
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
        order = (details or {}).get("order_id") or turn.focus.get("order_id")
        turn.act("handoff", order=str(order) if order else None)
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
