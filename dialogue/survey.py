"""Answers to the satisfaction survey the backoffice sends when a ticket closes: a CSAT score
(1–5, or words such as 非常满意 / 一般 / 很差), then an NPS score (0–10).

Only a message that reads as a score answers the survey. Anything else is an ordinary turn and
the survey lapses: the customer moved on, and a later "2" is more likely a menu choice. The
survey's questions and thanks are the backoffice's wording (``backoffice.surveys``).
"""

from __future__ import annotations

import textpatterns
from backoffice.surveys import SurveyDesk, question
from dialogue.turn import Turn

_CHINESE_DIGITS = {
    "零": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
    "十": 10,
}
_SCORE = textpatterns.compile(
    r"^\s*(10|[0-9]|十|[零一二两三四五六七八九])\s*(分|星|颗星|points?|stars?)?\s*[,，。.!！~]*\s*(?P<rest>.*)$",
    textpatterns.IGNORECASE,
)
_CSAT_WORDS: tuple[tuple[textpatterns.Pattern, int], ...] = (
    (
        textpatterns.compile(
            r"(非常不满意|很不满意|极差|太差|很差|差评|terrible|awful|very (unhappy|dissatisfied))",
            textpatterns.IGNORECASE,
        ),
        1,
    ),
    (textpatterns.compile(r"(不满意|不太满意|不好|unhappy|dissatisfied|bad)", textpatterns.IGNORECASE), 2),
    (textpatterns.compile(r"(一般|还行|凑合|马马虎虎|okay|so-so|average)", textpatterns.IGNORECASE), 3),
    (
        textpatterns.compile(
            r"(非常满意|很满意|超满意|特别满意|太棒|very (happy|satisfied)|excellent|great)", textpatterns.IGNORECASE
        ),
        5,
    ),
    (textpatterns.compile(r"(满意|不错|挺好|好评|happy|satisfied|good)", textpatterns.IGNORECASE), 4),
)
MAX_SCORE_TEXT = 60
"""A long message is not a survey answer, whatever number it starts with."""


def read_score(text: str, stage: str) -> tuple[int, str] | None:
    """The score and any words after it, or None when the message is not an answer."""
    text = text.strip()
    if not text or len(text) > MAX_SCORE_TEXT:
        return None
    match = _SCORE.match(text)
    if match:
        raw = match.group(1)
        score = int(raw) if raw.isdigit() else _CHINESE_DIGITS[raw]
        scale = range(1, 6) if stage == "csat" else range(0, 11)
        return (score, match.group("rest").strip()) if score in scale else None
    if stage == "csat":
        for pattern, score in _CSAT_WORDS:
            if pattern.search(text):
                return score, text
    return None


async def answer_survey(turn: Turn, surveys: SurveyDesk) -> bool:
    """True when this message answered the open survey (and the next question or thanks is said)."""
    if turn.form is not None:
        return False  # a flow's question comes first; the survey waits
    survey = await surveys.pending_for(turn.input.conversation_id, turn.input.awaiting_surveys)
    if survey is None:
        return False
    found = read_score(turn.input.raw_text or turn.input.text, survey.stage)
    if found is None:
        await surveys.lapse(survey.id)
        return False
    score, comment = found
    stage = survey.stage
    survey = await surveys.answer(survey.id, score, comment or None)
    turn.event("survey_answered", survey_id=survey.id, ticket_id=survey.ticket_id, stage=stage, score=score,
               agent=survey.agent, queue=survey.queue)  # fmt: skip
    turn.say_text(question("nps" if survey.stage == "nps" else "thanks", turn.language))
    return True
