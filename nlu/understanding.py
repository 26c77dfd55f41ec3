"""What the rest of the gateway calls "the NLU": normaliser → Rasa → entity rules → confidence threshold.

:class:`UnderstandingClient` wraps a transport client (:class:`nlu.client.RasaNluClient`, several
servers round-robin) the way httpx wraps a transport: the public ``parse`` stays Rasa-shaped, and
tests can put a real Rasa server or an honest double underneath.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from zoneinfo import ZoneInfo

from nlu.client import FALLBACK_INTENT, Entity, Intent, NluClient, ParseResult
from nlu.entities import extract_entities
from nlu.keywords import keyword_parse
from nlu.normalize import TextNormaliser, default_normaliser

DEFAULT_CONFIDENCE_THRESHOLD = 0.5
"""Below this the dialogue asks the customer to rephrase (calibrated with ``run.py nlu eval``)."""
DEFAULT_TIMEZONE = "Asia/Shanghai"


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
        normalised = self.normaliser.normalise(text)
        if normalised.text:
            raw = await self.transport.parse(normalised.text, message_id=message_id)
        else:
            raw = ParseResult(text="", intent=Intent(name=FALLBACK_INTENT, confidence=0.0))
        intent, ranking = raw.intent, list(raw.intent_ranking)
        if intent.name != FALLBACK_INTENT and intent.confidence < self.confidence_threshold:
            # Same shape as Rasa's FallbackClassifier: the fallback on top, the guesses kept below.
            intent = Intent(name=FALLBACK_INTENT, confidence=self.confidence_threshold)
            ranking = [intent, *ranking]
        entities = [Entity.model_validate(e.as_rasa()) for e in extract_entities(normalised.text, self.today())]
        return ParseResult.model_validate(
            {
                **raw.model_dump(exclude={"text", "intent", "entities", "intent_ranking"}),
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

    def fallback_parse(self, text: str) -> ParseResult | None:
        """Keywords and entity rules, for turns while no Rasa server answers."""
        return keyword_parse(text, self.normaliser, self.today())

    async def ready(self) -> bool:
        return await self.transport.ready()

    async def close(self) -> None:
        await self.transport.close()
