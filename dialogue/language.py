"""Which language to answer in: the one the customer writes."""

from __future__ import annotations

import textpatterns

CODES = textpatterns.compile(r"(?<![^\s@])[^\s@]++@\S+|\b(?=[A-Za-z0-9-]*\d)[A-Za-z0-9-]+\b")
"""E-mail addresses and order, tax or tracking codes: no evidence of the language a customer writes.
An address starts where a run of non-space starts, so a long run without "@" is read once."""
# Chinese customers type these too: "ok" alone does not make a conversation English.
_NEUTRAL_WORDS = frozenset({"ok", "okay", "yes", "no", "sku", "pdf", "jpg", "app"})
_CJK = textpatterns.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_LATIN_WORD = textpatterns.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2,}(?![A-Za-z0-9])")


def reply_language(text: str, detected: str | None, previous: str = "zh") -> str:
    """The NLU's detected language when it has one, else a guess from the text.

    Codes, ids, e-mail addresses and a bare "ok" ("91330106MA27XL0E01", "a@b.com") say nothing
    about the language: the conversation keeps its own.
    """
    words = _LATIN_WORD.findall(CODES.sub(" ", text))
    if not _CJK.search(text) and all(w.lower() in _NEUTRAL_WORDS for w in words):
        return previous
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
