"""Keyword understanding for when no Rasa server answers: a few unmistakable words for the top
tasks, and the regex entity rules (order ids, phones …), so a customer can still say "转人工",
"查订单" or "退货" — or pick "1"/"2" from the numbered menu the fallback reply offers — and be
served while the NLU is down. Never used while Rasa answers: it would only be a worse reader.

Owns the keyword table; knows nothing of the dialogue beyond intent names.
"""

from __future__ import annotations

from datetime import date

from nlu.client import Entity, Intent, ParseResult
from nlu.entities import extract_entities
from nlu.normalize import TextNormaliser

KEYWORD_CONFIDENCE = 0.6
"""What a keyword match claims: above the fallback threshold, below a real model's certainty."""

# Checked in this order: asking for a person wins over any topic in the same message.
KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("human_handoff", ("转人工", "人工", "真人", "agent", "human")),
    ("return_refund", ("退货", "return")),
    ("refund", ("退款", "退钱", "refund")),
    ("order_status", ("查订单", "查询订单", "物流", "快递", "到哪", "track", "where is my order")),
)


def keyword_parse(text: str, normaliser: TextNormaliser, today: date) -> ParseResult | None:
    """A Rasa-shaped reading of ``text`` from keywords and entity rules, or None if nothing is clear."""
    normalised = normaliser.normalise(text)
    lowered = normalised.text.lower()
    entities = [Entity.model_validate(e.as_rasa()) for e in extract_entities(normalised.text, today)]
    intent = next((name for name, words in KEYWORDS if any(word in lowered for word in words)), None)
    if intent is None and any(e.entity == "order_id" for e in entities):
        intent = "inform"  # a bare order number: the dialogue reads it as "where is this order"
    if intent is None:
        return None
    return ParseResult.model_validate(
        {
            "text": text,
            "normalized_text": normalised.text,
            "language": normalised.language,
            "traditional": normalised.traditional,
            "varieties": list(normalised.varieties),
            "intent": Intent(name=intent, confidence=KEYWORD_CONFIDENCE).model_dump(),
            "entities": [e.model_dump(exclude_none=True) for e in entities],
            "intent_ranking": [],
            "understood_by": "keywords",
        }
    )
