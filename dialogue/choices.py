"""Numbered answers: on channels without buttons (SMS, e-mail, voice) quick replies are shown
as "1. …", and the customer answers "2", "第二个" or "二". This maps such an answer back to the
offered choice, before the NLU reads it."""

from __future__ import annotations

from typing import Any

import textpatterns

_NUMBER = textpatterns.compile(r"^\s*(?:第\s*)?([1-9])\s*(?:个|項|项|單|单|号|號|\.|。)?\s*$")
_CHINESE = textpatterns.compile(r"^\s*+(?:第\s*+)?([一二两三四五六七八九])\s*+(?:个|項|项|單|单|号|號)?\s*+$")
_CHINESE_DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}


def resolve_choice(text: str, slots: dict[str, Any]) -> str | None:
    """The payload of the offered choice the text picks by number, or None."""
    offered = slots.get("choices")
    if not isinstance(offered, list) or not offered:
        return None
    index: int | None = None
    if match := _NUMBER.match(text):
        index = int(match.group(1))
    elif match := _CHINESE.match(text):
        index = _CHINESE_DIGITS[match.group(1)]
    if index is not None and 1 <= index <= len(offered):
        return str(offered[index - 1])
    return None
