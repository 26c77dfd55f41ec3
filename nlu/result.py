"""What the NLU makes of a text: Rasa's ``/model/parse`` answer as a model, and the fallback intent.

Apart from the HTTP client (``nlu.client``) so that readers of a parse — the dialogue — need not
import the client of Rasa's server.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

FALLBACK_INTENT = "nlu_fallback"


class Intent(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str | None = None
    confidence: float = 0.0


class Entity(BaseModel):
    model_config = ConfigDict(extra="allow")

    entity: str
    value: Any
    start: int | None = None
    end: int | None = None
    extractor: str | None = None


class Request(BaseModel):
    """One request of a message, in message order (see :attr:`ParseResult.requests`)."""

    model_config = ConfigDict(extra="allow")

    intent: Intent
    text: str
    """The clause as sent to the classifier: ``normalized_text[start:end]``."""
    start: int
    end: int
    entities: list[Entity] = Field(default_factory=list)


class ParseResult(BaseModel):
    """Rasa's ``/model/parse`` response; unknown fields are kept so the raw shape round-trips.

    ``requests`` (added by :class:`nlu.understanding.UnderstandingClient`) lists the message's
    requests in order; a message with one request has exactly one, equal to ``intent``.
    """

    model_config = ConfigDict(extra="allow")

    text: str
    intent: Intent = Field(default_factory=Intent)
    entities: list[Entity] = Field(default_factory=list)
    intent_ranking: list[Intent] = Field(default_factory=list)
    requests: list[Request] = Field(default_factory=list)

    @property
    def intent_name(self) -> str | None:
        return self.intent.name

    def entity_values(self, name: str) -> list[Any]:
        return [e.value for e in self.entities if e.entity == name]

    def first_entity(self, name: str) -> Any | None:
        values = self.entity_values(name)
        return values[0] if values else None
