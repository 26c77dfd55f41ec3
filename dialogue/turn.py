"""One turn's input, working state and outcome, shared by the engine and the flows.

A message may carry several asks ("查下物流 另外发票开了没"): the turn serves them one after
another, and :attr:`Turn.ask` is the one being served — its intent and entities are what the
flows read. What the bot does is recorded as it happens (:meth:`Turn.act`): the action and what it
was about, kept with the customer's message for the quality team and the conversation tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import textpatterns
from dialogue.replies import say
from dialogue.variety import SIMPLIFIED, language_of
from nlu.result import ParseResult
from store.models import Attachment, QuickReply

# Used only when the NLU server is down, so a customer who was asked for an order number
# can still be answered.
ORDER_ID_PATTERN = textpatterns.compile(r"(?<!\d)\d{10,20}(?!\d)")


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    quick_replies: tuple[QuickReply, ...] = ()


@dataclass(frozen=True, slots=True)
class Ask:
    """One request of a message: its words, the NLU's reading of them, its entities."""

    text: str
    intent: str | None
    confidence: float
    entities: tuple[dict[str, Any], ...] = ()

    def entity(self, name: str) -> Any | None:
        return next((e.get("value") for e in self.entities if e.get("entity") == name), None)

    def entity_values(self, name: str) -> list[Any]:
        return [e.get("value") for e in self.entities if e.get("entity") == name]


@dataclass(slots=True)
class TurnInput:
    """Everything the dialogue needs about one inbound message."""

    conversation_id: str
    customer_id: str
    channel: str
    text: str
    parse: ParseResult | None
    slots: dict[str, Any]
    language: str = "zh"
    identities: dict[str, str] = field(default_factory=dict)
    attachments: list[Attachment] = field(default_factory=list)
    nlu_down: bool = False
    """The NLU could not be reached (``parse`` is None for that reason, not for an empty text)."""
    attachments_refused: bool = False
    """The channel refused the message's file (too large, wrong type); the customer is told separately."""
    raw_text: str | None = None
    """The text as the customer sent it, before a number was read as one of the offered choices."""
    spoken: bool = False
    """The replies are spoken (a phone call): written in the prompts' own wording, not converted."""
    hints: dict[str, str] = field(default_factory=dict)
    awaiting_surveys: dict[str, int] = field(default_factory=dict)
    """Surveys flagged on the conversation (``Conversation.awaiting``): only then is one looked for."""
    """What the customer claims but no channel proved (a phone in REST metadata): for verifying, never trusted."""


@dataclass(slots=True)
class TurnOutcome:
    replies: list[Reply]
    slots: dict[str, Any]
    language: str
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    handed_off: bool = False
    acted: list[dict[str, Any]] = field(default_factory=list)
    """What the bot did, in order: ``{"action", "order"?, "sku"?, "request"?, "request_type"?, "slot"?}``."""
    variety: str = SIMPLIFIED


@dataclass(slots=True)
class Turn:
    """Mutable working state of one turn, shared with the flows."""

    input: TurnInput
    language: str
    slots: dict[str, Any]
    variety: str = SIMPLIFIED
    replies: list[Reply] = field(default_factory=list)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    acted: list[dict[str, Any]] = field(default_factory=list)
    handoff: tuple[str, dict[str, Any]] | None = None
    """A flow's request to put the customer through to an agent: (reason, details)."""
    redirect: str | None = None
    """Name of a flow to start next in this turn (e.g. a return of an unshipped order is a refund)."""
    ask: Ask | None = None
    """The request of the message being served now (a message may hold several)."""
    confirmed: dict[str, Any] | None = None
    """The subject of the confirmation the customer said yes to in this turn (see :mod:`dialogue.guard`)."""
    number: int = 0
    """This customer message's place in the conversation (1, 2, …): whether a question is still fresh."""
    several_asks: bool = False
    """The message holds more than one request; :attr:`ask` is one of them."""
    dropped: dict[str, Any] | None = None
    """The answers of a task the customer dropped in this message ("算了 不换了 直接退了吧"): a task
    they start instead on the same order and item takes the reason and pick-up time from it."""

    def __post_init__(self) -> None:
        self.language = language_of(self.variety) if self.variety else self.language

    # -- what was said ---------------------------------------------------------------------

    @property
    def text_now(self) -> str:
        """The words of the ask being served (the whole message when it holds one)."""
        return self.ask.text if self.ask is not None else self.input.text

    @property
    def confidence(self) -> float:
        if self.ask is not None:
            return self.ask.confidence
        return self.input.parse.intent.confidence if self.input.parse else 0.0

    @property
    def intent(self) -> str | None:
        if self.ask is not None:
            return self.ask.intent
        return self.input.parse.intent_name if self.input.parse else None

    def entity(self, name: str) -> Any | None:
        if self.ask is not None:
            found = self.ask.entity(name)
            if found is not None or self.input.parse is not None:
                return found
        elif self.input.parse is not None:
            return self.input.parse.first_entity(name)
        if name == "order_id" and (match := ORDER_ID_PATTERN.search(self.text_now)):
            return match.group(0)  # the NLU is down: an order number is still read
        return None

    def entity_values(self, name: str) -> list[Any]:
        if self.ask is not None:
            return self.ask.entity_values(name)
        return self.input.parse.entity_values(name) if self.input.parse is not None else []

    @property
    def normalized_text(self) -> str:
        """The text as the NLU read it (Simplified, regional words in Mandarin), else as sent; for
        one ask of several, that ask's words."""
        if self.ask is not None and self.several_asks:
            return self.ask.text
        extra = (self.input.parse.model_extra or {}) if self.input.parse is not None else {}
        value = extra.get("normalized_text")
        return value if isinstance(value, str) and value else self.input.text

    # -- replies -----------------------------------------------------------------------------

    def request_handoff(self, reason: str, **details: Any) -> None:
        self.handoff = (reason, details)

    def say(self, key: str, quick_replies: tuple[QuickReply, ...] = (), **values: Any) -> None:
        self.replies.append(Reply(say(key, self.language, **values), quick_replies))

    def say_text(self, text: str, quick_replies: tuple[QuickReply, ...] = ()) -> None:
        """A reply whose wording comes from elsewhere (the backoffice's notice of a decision)."""
        self.replies.append(Reply(text, quick_replies))

    def text(self, key: str, **values: Any) -> str:
        return say(key, self.language, **values)

    def choice(self, key: str, payload: str | None = None, **values: Any) -> QuickReply:
        """A quick reply labelled from a template; its payload is the label unless given."""
        title = say(key, self.language, **values)
        return QuickReply(title=title, payload=payload or title)

    # -- what was done -----------------------------------------------------------------------

    def act(
        self,
        action: str,
        *,
        order: str | None = None,
        sku: str | None = None,
        request: str | None = None,
        request_type: str | None = None,
        slot: str | None = None,
    ) -> None:
        """Record an action the bot took this turn and what it was about; the thing it was about
        becomes the conversation's focus (what "那啥时候到" asks about next)."""
        about = {"order": order, "sku": sku, "request": request, "request_type": request_type, "slot": slot}
        self.acted.append({"action": action, **{k: v for k, v in about.items() if v is not None}})
        if order is not None or request is not None:
            focus = dict(self.slots.get("focus") or {})
            if order is not None and focus.get("order_id") != order:
                focus = {}
            focus.update({k: v for k, v in {"order_id": order, "sku": sku, "request_id": request}.items() if v})
            focus["turn"] = self.number
            self.slots["focus"] = focus

    def acted_on(self, action: str) -> bool:
        return any(a["action"] == action for a in self.acted)

    @property
    def focus(self) -> dict[str, Any]:
        """The order (and item, request) the conversation is about, while it is recent."""
        focus = self.slots.get("focus")
        if not isinstance(focus, dict) or self.number - int(focus.get("turn", 0)) > FOCUS_TURNS:
            return {}
        return focus

    # -- the active flow and its question --------------------------------------------------------

    @property
    def form(self) -> dict[str, Any] | None:
        """The active flow's state: ``{"flow", "step", "data", "asked"?}``, or None."""
        form = self.slots.get("form")
        return form if isinstance(form, dict) else None

    def begin(self, flow: str, step: str, **data: Any) -> dict[str, Any]:
        form = {"flow": flow, "step": step, "data": data}
        self.slots["form"] = form
        return form

    def step(self, step: str, **data: Any) -> None:
        form = self.form
        if form is None:
            raise RuntimeError("no active flow")
        form["step"] = step
        form["data"].update(data)

    def asked(self, kind: str, **subject: Any) -> None:
        """The flow's question now pending: it belongs to this flow, this conversation and this turn;
        an answer is applied only to it, and only while it is fresh."""
        form = self.form
        if form is None:
            raise RuntimeError("no active flow")
        form["asked"] = {
            "kind": kind,
            "turn": self.number,
            "conversation": self.input.conversation_id,
            **{k: v for k, v in subject.items() if v is not None},
        }

    @property
    def pending(self) -> dict[str, Any] | None:
        form = self.form
        asked = form.get("asked") if form else None
        return asked if isinstance(asked, dict) else None

    def fresh(self, asked: dict[str, Any]) -> bool:
        """The question was asked in this conversation just before this message."""
        return asked.get("conversation") == self.input.conversation_id and int(asked.get("turn", -1)) == self.number - 1

    def finish(self) -> None:
        self.slots.pop("form", None)

    @property
    def media_ids(self) -> list[str]:
        return [a.media_id for a in self.input.attachments if a.media_id]

    def evidence(self) -> list[str]:
        """Photos of this message plus any sent earlier on their own (then used up)."""
        pending = list(self.slots.pop("pending_media", []) or [])
        return list(dict.fromkeys([*pending, *self.media_ids]))

    def event(self, name: str, **data: Any) -> None:
        self.events.append((name, data))


FOCUS_TURNS = 6
"""Customer messages after which what the conversation was about is no longer taken for granted."""
