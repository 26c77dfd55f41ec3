"""What a prompt expects the caller to say, and mapping a transcript onto it.

A prompt offers a few answers (menu scenarios, the dialogue's quick replies, yes/no); each has
the phrases a caller may say and the payload that answer means. The phrase list biases or restricts
the recogniser (Vosk grammar, whisper hotwords); :func:`match_answer` then maps the transcript to an
answer when it clearly says one — the phrase is in it, or it is the phrase with a misheard
character — and otherwise leaves the transcript for the NLU to read, like typed text.

Must not know recognisers, Twilio or the dialogue.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

import textpatterns

SIMILAR_ENOUGH = 0.75
"""Character similarity above which a transcript is taken as a phrase it nearly is (改避址 → 改地址)."""

_NOT_SPOKEN = textpatterns.compile(r"[\s\W_]+", 0)


@dataclass(frozen=True, slots=True)
class Answer:
    phrases: tuple[str, ...]
    """Ways to say it, in the call's language (the first is the one read out)."""
    payload: str
    """What choosing it sends on, as a button press would."""
    key: str | None = None
    """The DTMF key that chooses it, if any."""


def fold(text: str) -> str:
    """Text as compared: width- and case-folded, punctuation and spaces removed."""
    return _NOT_SPOKEN.sub("", unicodedata.normalize("NFKC", text).lower())


@dataclass(frozen=True, slots=True)
class Match:
    answer: Answer
    phrase: str
    score: float


def match_answer(transcript: str, answers: Sequence[Answer]) -> Match | None:
    """The answer the transcript says, or None. A phrase contained in the transcript wins (the
    longest such phrase); otherwise the most similar phrase if it is similar enough."""
    heard = fold(transcript)
    if not heard:
        return None
    contained: list[Match] = []
    best: Match | None = None
    for answer in answers:
        for phrase in answer.phrases:
            wanted = fold(phrase)
            if not wanted:
                continue
            if wanted in heard:
                contained.append(Match(answer, phrase, 1.0 + len(wanted) / 100))
                continue
            score = SequenceMatcher(None, heard, wanted, autojunk=False).ratio()
            if best is None or score > best.score:
                best = Match(answer, phrase, score)
    if contained:
        return max(contained, key=lambda m: m.score)
    if best is not None and best.score >= SIMILAR_ENOUGH:
        return best
    return None


def phrase_list(answers: Sequence[Answer], extra: Sequence[str] = ()) -> list[str]:
    """All phrases, each once, for the recogniser's grammar or hotwords: every answer's first
    phrase before the other ways of saying it (an engine that can only take a few keeps the first)."""
    first = [a.phrases[0] for a in answers if a.phrases]
    rest = [p for a in answers for p in a.phrases[1:]]
    return list(dict.fromkeys([*first, *extra, *rest]))
