"""What the rest of the gateway calls "the NLU": normaliser → Rasa → entity rules → confidence threshold.

:class:`UnderstandingClient` wraps a transport client (:class:`nlu.client.RasaNluClient`, several
servers round-robin) the way httpx wraps a transport: the public ``parse`` stays Rasa-shaped, and
tests can put a real Rasa server or an honest double underneath.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import textpatterns
from errors import UserError
from nlu.client import FALLBACK_INTENT, Entity, Intent, NluClient, ParseResult
from nlu.entities import Extracted, extract_entities
from nlu.keywords import KEYWORD_CONFIDENCE, keyword_intent
from nlu.normalize import NormalisedText, TextNormaliser, default_normaliser

DEFAULT_CONFIDENCE_THRESHOLD = 0.5
"""Below this the dialogue asks the customer to rephrase (calibrated with ``run.py nlu eval``)."""
DEFAULT_TIMEZONE = "Asia/Shanghai"
READING_BUDGET_SECONDS = 1.0
"""The most the normaliser and the entity rules may spend on one message (4,000 characters take
about 15 ms); past it the text is hostile and the turn fails (and is quarantined after a retry)."""
CLASSIFIED_CHARS = 1000
"""Rasa classifies the first this many characters of the normalised text: a request is stated
early, and featurising a 4,000-character paste costs the one-at-a-time Rasa server ~10x more."""


class UnreadableText(UserError):
    """The text could not be read within its time budget (built to make pattern matching crawl)."""

    code = "unreadable_text"


def today_in(timezone: str) -> Callable[[], date]:
    zone = ZoneInfo(timezone)
    return lambda: datetime.now(zone).date()


class UnderstandingClient(NluClient):
    def __init__(
        self,
        transport: NluClient,
        *,
        normaliser: TextNormaliser | None = None,
        confidence_threshold: float = DEFAULT_CONFIDENCE_THRESHOLD,
        today: Callable[[], date] | None = None,
    ) -> None:
        self.transport = transport
        self.normaliser = normaliser or default_normaliser()
        self.confidence_threshold = confidence_threshold
        self.today = today or today_in(DEFAULT_TIMEZONE)

    async def parse(self, text: str, message_id: str | None = None) -> ParseResult:
        """Rasa's parse shape, plus ``normalized_text``, ``language``, ``traditional`` and ``varieties``.

        ``text`` is what the customer sent; Rasa saw ``normalized_text``; entity offsets refer to it.
        """
        normalised, entities = await self._read(text)
        if normalised.text:
            raw = await self.transport.parse(normalised.text[:CLASSIFIED_CHARS], message_id=message_id)
        else:
            raw = ParseResult(text="", intent=Intent(name=FALLBACK_INTENT, confidence=0.0))
        intent, ranking = raw.intent, list(raw.intent_ranking)
        if intent.name != FALLBACK_INTENT and intent.confidence < self.confidence_threshold:
            # Same shape as Rasa's FallbackClassifier: the fallback on top, the guesses kept below.
            intent = Intent(name=FALLBACK_INTENT, confidence=self.confidence_threshold)
            ranking = [intent, *ranking]
        extra = raw.model_dump(exclude={"text", "intent", "entities", "intent_ranking"})
        return self._reading(text, normalised, intent, ranking, entities, extra)

    async def _read(self, text: str) -> tuple[NormalisedText, list[Extracted]]:
        """Normaliser and entity rules, in a worker thread under one time budget: the event loop
        keeps answering other customers while a long message is read (the patterns release the
        GIL), and a message built to make them crawl is refused instead of holding the process."""
        today = self.today()

        def read() -> tuple[NormalisedText, list[Extracted]]:
            with textpatterns.deadline(READING_BUDGET_SECONDS):
                normalised = self.normaliser.normalise(text)
                return normalised, extract_entities(normalised.text, today)

        try:
            return await asyncio.to_thread(read)
        except textpatterns.PatternTimeout as exc:
            raise UnreadableText(f"a {len(text)}-character message could not be read in time") from exc

    async def fallback_parse(self, text: str) -> ParseResult | None:
        """Keywords and entity rules, for turns while no Rasa server answers."""
        normalised, entities = await self._read(text)
        intent = keyword_intent(normalised.text, any(e.entity == "order_id" for e in entities))
        if intent is None:
            return None
        keyword = Intent(name=intent, confidence=KEYWORD_CONFIDENCE)
        return self._reading(text, normalised, keyword, [], entities, {"understood_by": "keywords"})

    @staticmethod
    def _reading(
        text: str,
        normalised: NormalisedText,
        intent: Intent,
        ranking: list[Intent],
        found: list[Extracted],
        extra: dict[str, Any],
    ) -> ParseResult:
        """Rasa's response shape, with the normaliser's reading and the entity rules' entities."""
        entities = [Entity.model_validate(e.as_rasa()) for e in found]
        return ParseResult.model_validate(
            {
                **extra,
                "text": text,
                "normalized_text": normalised.text,
                "language": normalised.language,
                "traditional": normalised.traditional,
                "varieties": list(normalised.varieties),
                "intent": intent.model_dump(),
                "entities": [e.model_dump(exclude_none=True) for e in entities],
                "intent_ranking": [i.model_dump() for i in ranking],
            }
        )

    async def ready(self) -> bool:
        return await self.transport.ready()

    async def close(self) -> None:
        await self.transport.close()
