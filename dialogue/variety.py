"""Which written variety to answer in, and rendering the replies in it.

Customers are answered the way they write: Traditional writers in Taiwan-style Traditional
(OpenCC ``s2twp``), written Cantonese in Hong Kong Traditional (``s2hk``), English in English,
everyone else in Simplified Mandarin. The choice sticks to the conversation: a message that says
nothing about it (a number, "ok", "确认") keeps it, and an English conversation stays English
when the customer sends a Chinese address, product or company name — only Chinese sentences
switch it. The templates are written in Simplified Chinese and English; the conversion happens
once, on the finished replies (order ids, e-mail addresses and codes pass through unchanged).
"""

from __future__ import annotations

from collections.abc import Iterable

import opencc

import textpatterns
from dialogue.language import CODES, reply_language

SIMPLIFIED = "zh-Hans"
TAIWAN = "zh-Hant-TW"
HONG_KONG = "zh-Hant-HK"
ENGLISH = "en"
VARIETIES = (SIMPLIFIED, TAIWAN, HONG_KONG, ENGLISH)

_CANTONESE = textpatterns.compile(
    r"[咗唔嘅冇啲嚟喺睇乜嘢啱嗰哋㗎噉攞搵畀]|而家|聽日|听日|琴日|朝早|下晝|下昼|唔該|點解|点解|邊度|边度"
    r"|^\s*係|係[啊呀囉咪嘅]?\s*$"
)
_LATIN_WORD = textpatterns.compile(r"[A-Za-z]{2,}")
_CJK = textpatterns.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_NAMES = textpatterns.compile(
    # What an English writer may paste in Chinese without switching: addresses (they start with an
    # administrative unit), companies and shops. Bounded, so "税号" or "单号" is never taken for one.
    r"(?:[\u4e00-\u9fff]{1,8}(?:省|市|区|區|县|縣|镇|鎮))+[\u4e00-\u9fff\w\s#()（）-]{0,40}"
    r"|[\u4e00-\u9fff]{1,12}(?:路|街|大道)[\w\s#-]{0,12}(?:号|號)[\u4e00-\u9fff\w\s#-]{0,20}"
    r"|[\u4e00-\u9fff（）()]{2,20}(?:有限公司|公司|商行|工作室|文具店|店)"
)
_CJK_RUN = textpatterns.compile(r"[\u4e00-\u9fff]{2,}")
_to_traditional = opencc.OpenCC("s2t")
_to_simplified = opencc.OpenCC("t2s")
_WHOLE_WORDS = textpatterns.compile(r"(发票|发货|发出|发送|发放|发起|发件|发错|发来|发给)")
"""Words after 理 that OpenCC would otherwise take as 理发 (hair) in 办理发票, 办理发货."""
_converters = {TAIWAN: opencc.OpenCC("s2twp"), HONG_KONG: opencc.OpenCC("s2hk")}


def written_traditional(text: str) -> bool:
    """More characters only Traditional has than characters only Simplified has."""
    traditional_only = sum(a != b for a, b in zip(text, _to_simplified.convert(text), strict=False))
    simplified_only = sum(a != b for a, b in zip(text, _to_traditional.convert(text), strict=False))
    return bool(traditional_only > simplified_only)


def choose_variety(
    text: str,
    *,
    detected_language: str | None,
    traditional: bool,
    regional: Iterable[str],
    previous: str | None,
    names: Iterable[str] = (),
) -> str:
    """The variety to answer this message in. ``traditional`` and ``regional`` are the NLU's
    reading (the normaliser saw Traditional characters; the lexicon sections that matched);
    ``names`` are strings of the customer's own that carry no language (their products)."""
    previous = previous if previous in VARIETIES else None
    stripped = _NAMES.sub(" ", CODES.sub(" ", text))
    for name in names:
        for part in _CJK_RUN.findall(name):
            stripped = stripped.replace(part, " ")
    if len(_LATIN_WORD.findall(stripped)) >= 4 and len(_CJK.findall(stripped)) <= 4:
        return ENGLISH  # an English sentence around a word or two of Chinese
    if not _CJK.search(stripped):
        language = reply_language(stripped, None, "en" if previous == ENGLISH else "zh")
        if _CJK.search(text) and previous == ENGLISH:
            return ENGLISH  # an address or a product name in Chinese is no switch
        if language == "en":
            return ENGLISH
        if not _CJK.search(text):
            return previous or SIMPLIFIED
    elif detected_language == "en" and not _CJK.search(stripped):
        return ENGLISH
    if not _CJK.search(text):
        return previous or SIMPLIFIED
    if "cantonese" in set(regional) or _CANTONESE.search(text):
        return HONG_KONG
    if traditional or written_traditional(text):
        return TAIWAN
    if previous in (TAIWAN, HONG_KONG) and (len(_CJK.findall(stripped)) <= 2 or _script_neutral(text)):
        return previous  # "好", "明天下午都可以": nothing says Simplified, the conversation stays Traditional
    return SIMPLIFIED


def _script_neutral(text: str) -> bool:
    """Written the same in both scripts ("明天下午都可以")."""
    return bool(_to_simplified.convert(text) == text and _to_traditional.convert(text) == text)


def language_of(variety: str) -> str:
    """The templates' language for a variety: ``en`` or ``zh``."""
    return "en" if variety == ENGLISH else "zh"


def render(text: str, variety: str) -> str:
    """A reply written in Simplified Chinese (or English) in the customer's variety."""
    converter = _converters.get(variety)
    if converter is None:
        return text
    # OpenCC's longest match reads 办理发票 as 办 + 理发 (haircut, 髮): these words are converted alone.
    parts = _WHOLE_WORDS.split(text)
    return "".join(converter.convert(part) for part in parts)
