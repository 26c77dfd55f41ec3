"""One turn's input, working state and outcome, shared by the engine and the flows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import textpatterns
from dialogue.replies import say
from nlu import ParseResult
from store.models import Attachment, QuickReply

# Used only when the NLU server is down, so a customer who was asked for an order number
# can still be answered.
ORDER_ID_PATTERN = textpatterns.compile(r"(?<!\d)\d{10,20}(?!\d)")


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    quick_replies: tuple[QuickReply, ...] = ()


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


@dataclass(slots=True)
class TurnOutcome:
    replies: list[Reply]
    slots: dict[str, Any]
    language: str
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    handed_off: bool = False


@dataclass(slots=True)
class Turn:
    """Mutable working state of one turn, shared with the flows."""

    input: TurnInput
    language: str
    slots: dict[str, Any]
    replies: list[Reply] = field(default_factory=list)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    handoff: tuple[str, dict[str, Any]] | None = None
    """A flow's request to put the customer through to an agent: (reason, details)."""

    redirect: str | None = None
    """Name of a flow to start next in this turn (e.g. a return of an unshipped order is a refund)."""

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

    @property
    def form(self) -> dict[str, Any] | None:
        """The active flow's state: ``{"flow", "step", "data"}``, or None."""
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

    def finish(self) -> None:
        self.slots.pop("form", None)

    @property
    def confidence(self) -> float:
        return self.input.parse.intent.confidence if self.input.parse else 0.0

    @property
    def media_ids(self) -> list[str]:
        return [a.media_id for a in self.input.attachments if a.media_id]

    def evidence(self) -> list[str]:
        """Photos of this message plus any sent earlier on their own (then used up)."""
        pending = list(self.slots.pop("pending_media", []) or [])
        return list(dict.fromkeys([*pending, *self.media_ids]))

    def event(self, name: str, **data: Any) -> None:
        self.events.append((name, data))

    @property
    def normalized_text(self) -> str:
        """The text as the NLU read it (Simplified, regional words in Mandarin), else as sent."""
        extra = (self.input.parse.model_extra or {}) if self.input.parse is not None else {}
        value = extra.get("normalized_text")
        return value if isinstance(value, str) and value else self.input.text

    @property
    def intent(self) -> str | None:
        return self.input.parse.intent_name if self.input.parse else None

    def entity(self, name: str) -> Any | None:
        if self.input.parse is not None:
            return self.input.parse.first_entity(name)
        if name == "order_id" and (match := ORDER_ID_PATTERN.search(self.input.text)):
            return match.group(0)
        return None
