"""What the rest of the gateway calls "the NLU": normaliser → Rasa → entity rules → confidence threshold.

:class:`UnderstandingClient` wraps a transport client (:class:`nlu.client.RasaNluClient`, several
servers round-robin) the way httpx wraps a transport: the public ``parse`` stays Rasa-shaped, and
tests can put a real Rasa server or an honest double underneath.

Several requests in one message (:mod:`nlu.segment`): a message with more than one clause is
classified as a whole and clause by clause; clauses whose intent is a task (not a greeting, thanks,
yes/no, a bare detail or out of scope) and confident enough become separate requests, in message
order, with adjacent clauses of the same intent merged. ``requests`` in the result lists them;
the top-level ``intent`` is the first. A split after a comma or a space (no sentence end, no
connective such as 顺便/另外) needs more confidence and the whole message's intent among its
requests; otherwise the message is one request, the whole message's intent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import textpatterns
from errors import UserError
from nlu.client import FALLBACK_INTENT, Entity, Intent, NluClient, ParseResult, Request
from nlu.entities import Extracted, extract_entities
from nlu.keywords import KEYWORD_CONFIDENCE, keyword_intent
from nlu.normalize import NormalisedText, TextNormaliser, default_normaliser
from nlu.segment import Clause, clause_text, clauses, content_text

DEFAULT_CONFIDENCE_THRESHOLD = 0.5
"""Below this the dialogue asks the customer to rephrase (calibrated with ``run.py nlu eval``)."""
DEFAULT_TIMEZONE = "Asia/Shanghai"
READING_BUDGET_SECONDS = 1.0
"""The most the normaliser and the entity rules may spend on one message (4,000 characters take
about 15 ms); past it the text is hostile and the turn fails (and is quarantined after a retry)."""
CLASSIFIED_CHARS = 1000
"""Rasa classifies the first this many characters of the normalised text: a request is stated
early, and featurising a 4,000-character paste costs the one-at-a-time Rasa server ~10x more.
What it reads of them is :func:`nlu.segment.content_text` (no greetings, fillers, order cards)."""


NOT_REQUESTS = frozenset({"greet", "goodbye", "thanks", "affirm", "deny", "inform", "out_of_scope", FALLBACK_INTENT})
"""Intents that are not a request of their own beside another one (亲 在吗, 谢谢, an order number)."""
WEAK_SPLIT_CONFIDENCE = 0.75
"""A clause after a comma or space (no sentence end, no connective) is a separate request only
this confident (and only if the whole message's intent is one of the requests)."""


WEAK_SPLIT_SUPPORT = 0.02
"""…and each of its requests must have at least this confidence in the whole message's ranking."""


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
        """Rasa's parse shape, plus ``normalized_text``, ``language``, ``traditional``, ``varieties``
        and ``requests`` (the message's requests in order; one, equal to ``intent``, for one ask).

        ``text`` is what the customer sent; Rasa saw ``normalized_text`` without fillers and order
        cards (:func:`nlu.segment.content_text`); entity and request offsets refer to it.
        """
        normalised, entities = await self._read(text)
        classified = normalised.text[:CLASSIFIED_CHARS]
        parts = clauses(classified) if classified else []
        if classified:
            calls = [self.transport.parse(content_text(classified), message_id=message_id)]
            if len(parts) > 1:
                calls += [self.transport.parse(clause_text(part.text), message_id=message_id) for part in parts]
            results = await asyncio.gather(*calls)
            raw = results[0]
        else:
            results = []
            raw = ParseResult(text="", intent=Intent(name=FALLBACK_INTENT, confidence=0.0))
        split = self._split(parts, raw.intent_ranking or [raw.intent], [r.intent for r in results[1:]])
        intent, ranking = raw.intent, list(raw.intent_ranking)
        if split:
            intent = split[0][1]
            asked: dict[str | None, Intent] = {}
            for _, said in split:
                asked.setdefault(said.name, said)  # each intent once in the ranking, where first asked
            ranking = [*asked.values(), *(r for r in ranking if r.name not in asked)]
        if intent.name != FALLBACK_INTENT and intent.confidence < self.confidence_threshold:
            # Same shape as Rasa's FallbackClassifier: the fallback on top, the guesses kept below.
            intent = Intent(name=FALLBACK_INTENT, confidence=self.confidence_threshold)
            ranking = [intent, *ranking]
        extra = raw.model_dump(exclude={"text", "intent", "entities", "intent_ranking", "requests"})
        return self._reading(text, normalised, intent, ranking, entities, extra, split)

    def _split(
        self, parts: list[Clause], whole: list[Intent], found: list[Intent]
    ) -> list[tuple[tuple[int, int], Intent]]:
        """The separate requests ((start, end) in the normalised text, intent), or [] for one request.

        ``whole`` is the whole message's ranking, ``found`` each clause's intent."""
        if len(parts) < 2 or len(found) != len(parts):
            return []
        threshold = max(self.confidence_threshold, DEFAULT_CONFIDENCE_THRESHOLD)
        requests: list[tuple[list[int], Intent, bool]] = []  # ([start, end], intent, began strongly)
        leading_start: int | None = None
        for number, (part, intent) in enumerate(zip(parts, found, strict=True)):
            # The first clause has no boundary before it; a later one needs more after a comma or space.
            needed = threshold if number == 0 or part.strong else max(threshold, WEAK_SPLIT_CONFIDENCE)
            is_request = intent.name not in NOT_REQUESTS and intent.name is not None and intent.confidence >= needed
            if is_request and requests and requests[-1][1].name == intent.name:
                span, kept, strong = requests[-1]
                span[1] = part.end
                if intent.confidence > kept.confidence:
                    requests[-1] = (span, intent, strong)
            elif is_request:
                start = part.start if leading_start is None or requests else leading_start
                requests.append(([start, part.end], intent, part.strong))
            elif requests:
                requests[-1][0][1] = part.end  # a detail, a thanks, a weak clause: part of the ask before
            elif leading_start is None:
                leading_start = part.start
        if len(requests) < 2:
            return []
        if not any(strong for _, _, strong in requests[1:]):
            # Split only at commas and spaces: the whole message must read as these requests too
            # (a message with one ask is read confidently as that ask, not as its first clause).
            support = {i.name: i.confidence for i in whole}
            if any(support.get(i.name, 0.0) < WEAK_SPLIT_SUPPORT for _, i, _ in requests):
                return []
        if leading_start is not None and requests:
            requests[0][0][0] = min(requests[0][0][0], leading_start)
        return [((span[0], span[1]), intent) for span, intent, _ in requests]

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
        split: list[tuple[tuple[int, int], Intent]] | None = None,
    ) -> ParseResult:
        """Rasa's response shape, with the normaliser's reading, the entity rules' entities and the
        requests in message order (one, equal to ``intent``, unless the message holds several)."""
        entities = [Entity.model_validate(e.as_rasa()) for e in found]
        spans = [(span, i) for span, i in split] if split else [((0, len(normalised.text)), intent)]
        requests = []
        for number, ((start, end), request_intent) in enumerate(spans):
            inside = [e for e in entities if e.start is not None and start <= e.start and (e.end or e.start) <= end]
            requests.append(
                Request(
                    intent=intent if number == 0 else request_intent,
                    text=normalised.text[start:end],
                    start=start,
                    end=end,
                    entities=inside if split else entities,
                )
            )
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
                "requests": [r.model_dump(exclude_none=True) for r in requests],
            }
        )

    async def ready(self) -> bool:
        return await self.transport.ready()

    async def close(self) -> None:
        await self.transport.close()
