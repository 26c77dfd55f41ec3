"""Training-data variants made from the project's own examples: the same request typed in pinyin.

Customers without a Chinese input method type toneless pinyin, spaced by syllable ("wo yao tui
kuan") or run together ("woyaotuikuan"). The normaliser only knows whole pinyin words of the
lexicon (tuikuan → 退款), so the model also learns from pinyin renderings of short Chinese examples
(pypinyin, whose dictionary ships in its wheel). Only training uses this; parse input is untouched.
"""

from __future__ import annotations

from pypinyin import lazy_pinyin

import textpatterns

MAX_CJK = 14
"""Only short examples are rendered (pinyin typists write short messages)."""
EVERY = 2
"""One short example in this many gets a pinyin twin (enough to learn the spellings, not too many)."""

_CJK = textpatterns.compile(r"[\u3400-\u9fff]")
_SPACES = textpatterns.compile(r"\s+")
_RUN = textpatterns.compile(r"[\u3400-\u9fff]+|[^\u3400-\u9fff]+")


def pinyin_twin(text: str, joined: bool) -> str | None:
    """The text in toneless pinyin (syllables spaced, or run together within each run of Chinese),
    or None when it has no Chinese or is too long."""
    count = len(_CJK.findall(text))
    if count == 0 or count > MAX_CJK:
        return None
    runs: list[str] = []
    for match in _RUN.finditer(text):
        run = match.group(0)
        if _CJK.match(run):
            runs.append(("" if joined else " ").join(lazy_pinyin(run)))
        elif run.strip():
            runs.append(run.strip())
    return _SPACES.sub(" ", " ".join(runs)).strip()


def pinyin_variants(texts: list[str]) -> list[str]:
    """Pinyin twins of every ``EVERY``-th short Chinese text, alternately spaced and joined."""
    variants: list[str] = []
    short = [t for t in texts if 0 < len(_CJK.findall(t)) <= MAX_CJK]
    for number, text in enumerate(short[::EVERY]):
        twin = pinyin_twin(text, joined=number % 2 == 1)
        if twin and twin not in variants:
            variants.append(twin)
    return variants
