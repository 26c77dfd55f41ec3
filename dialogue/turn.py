"""One turn's input, working state and outcome, shared by the engine and the flows."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from dialogue.replies import say
from nlu import ParseResult
from store.models import QuickReply

# Used only when the NLU server is down, so a customer who was asked for an order number
# can still be answered.
ORDER_ID_PATTERN = re.compile(r"(?<!\d)\d{10,20}(?!\d)")


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

    def say(self, key: str, quick_replies: tuple[QuickReply, ...] = (), **values: Any) -> None:
        self.replies.append(Reply(say(key, self.language, **values), quick_replies))

    def event(self, name: str, **data: Any) -> None:
        self.events.append((name, data))

    @property
    def intent(self) -> str | None:
        return self.input.parse.intent_name if self.input.parse else None

    def entity(self, name: str) -> Any | None:
        if self.input.parse is not None:
            return self.input.parse.first_entity(name)
        if name == "order_id" and (match := ORDER_ID_PATTERN.search(self.input.text)):
            return match.group(0)
        return None
