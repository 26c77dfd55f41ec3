"""Which language to answer in: the one the customer writes."""

from __future__ import annotations

import re

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")


def reply_language(text: str, detected: str | None, previous: str = "zh") -> str:
    """The NLU's detected language when it has one, else a guess from the text."""
    if detected in ("zh", "en"):
        return detected
    return detect_language(text, previous)


def detect_language(text: str, previous: str = "zh") -> str:
    """``zh`` if the text has Chinese characters, ``en`` if it has English words, else ``previous``.

    A bare order number or "1" keeps the conversation's language.
    """
    if _CJK.search(text):
        return "zh"
    if _LATIN_WORD.search(text):
        return "en"
    return previous
