"""Replies for the ear: short spoken prompts with keypad (DTMF) alternatives.

Text channels show quick replies as buttons (app, Telegram) or numbered lines (SMS, e-mail);
on the phone a caller hears them as "按1…，按2…" and may press the key or say the words. Long
lists and logistics timelines are cut to what a caller can remember.
"""

from __future__ import annotations

from dataclasses import dataclass

import textpatterns
from dialogue.turn import Reply

MAX_SPOKEN_CHARS = 120
"""About 25 seconds of Mandarin at a calm pace: longer prompts lose callers."""
MAX_SPOKEN_CHOICES = 5

_NUMBERED_LINE = textpatterns.compile(r"^\s*\d+\.\s.*$", textpatterns.MULTILINE)
_SENTENCE_END = textpatterns.compile(r"(?<=[。！？!?.])")


@dataclass(frozen=True, slots=True)
class SpokenPrompt:
    text: str
    keys: dict[str, str]
    """DTMF digit → the choice's payload, sent on as if the caller had said it."""


def spoken_prompt(replies: list[Reply], language: str = "zh") -> SpokenPrompt:
    """One prompt for a turn's replies: their text shortened, the last reply's choices as keys."""
    parts: list[str] = []
    for reply in replies:
        # Numbered choice lines are read out as keys instead; a timeline is cut to its first line.
        text = _NUMBERED_LINE.sub("", reply.text).strip()
        first_block = text.split("\n")[0].strip()
        if first_block:
            parts.append(first_block)
    joiner = "" if language == "zh" else " "
    text = _shorten(joiner.join(parts), language)
    choices = replies[-1].quick_replies[:MAX_SPOKEN_CHOICES] if replies else ()
    keys = {str(n): q.payload for n, q in enumerate(choices, start=1)}
    if choices:
        if language == "zh":
            menu = "，".join(f"{q.title}请按{n}" for n, q in enumerate(choices, start=1))
            text = f"{text}{menu}。"
        else:
            menu = ", ".join(f"for {q.title} press {n}" for n, q in enumerate(choices, start=1))
            text = f"{text} {menu[0].upper()}{menu[1:]}."
    return SpokenPrompt(text=text, keys=keys)


def _shorten(text: str, language: str) -> str:
    if len(text) <= MAX_SPOKEN_CHARS:
        return text
    kept = ""
    for sentence in _SENTENCE_END.split(text):
        if len(kept) + len(sentence) > MAX_SPOKEN_CHARS:
            break
        kept += sentence
    return kept or text[:MAX_SPOKEN_CHARS]
