"""Numbers a caller gives by voice or keypad: order numbers and phone numbers.

Owns what turns an answer to "what is your order number / phone number?" into digits: the digit
words each language is spoken with (the Vosk digit grammar and whisper's digit prompt), folding a
digits-only transcript to digits (零〇一二三四五六七八九, 幺 for 1 and 两 for 2 as said on the phone, 洞 for
0, the financial 壹贰叁…, full-width and Arabic digits, and — in Mandarin — any character that
sounds like a digit, since in a digits-only answer a 腰 or 雅 is a misheard 幺; in English zero/oh,
one … nine, "double"/"triple"), keyed entries (``*`` clears what was keyed before it), choosing
the number the caller most likely meant among the ones the shop knows for them (their own orders,
their own phone), and the read-back sentence that asks the caller to confirm it.

Must not know recognisers, Twilio, the call flow or the dialogue.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from functools import lru_cache

import textpatterns

ORDER_ID = "order_id"
PHONE = "phone"
NUMBER_KINDS = (ORDER_ID, PHONE)

MIN_SPOKEN_DIGITS = 5
"""A digits-only decoding with fewer digits than this was not a number (order ids have 10–20
digits, phone numbers 7 or more): the utterance is decoded again as ordinary speech."""
CLOSE_ENOUGH = 0.34
"""A decoded number within this share of edits (insertions, deletions, substitutions) of exactly
one number the shop knows for the caller is read back as that number."""

DIGIT_WORDS: dict[str, tuple[str, ...]] = {
    "zh": ("零", "一", "二", "三", "四", "五", "六", "七", "八", "九", "幺", "两", "洞"),
    "en": ("zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "double", "triple"),
    "ko": ("영", "공", "일", "이", "삼", "사", "오", "육", "칠", "팔", "구"),
}
"""What a digits-only answer is made of, per language (the Vosk grammar of the digits pass)."""

DIGIT_PROMPTS: dict[str, str] = {
    "zh": "幺两洞零一二三四五六七八九",
    "en": "zero one two three four five six seven eight nine",
}
"""whisper's hint for the digits pass: the digit words themselves (a longer prompt makes it guess)."""

_HAN_DIGITS = {
    **dict.fromkeys("零〇洞", "0"),
    **dict.fromkeys("一幺壹", "1"),
    **dict.fromkeys("二两贰兩", "2"),
    **dict.fromkeys("三叁", "3"),
    **dict.fromkeys("四肆", "4"),
    **dict.fromkeys("五伍", "5"),
    **dict.fromkeys("六陆陸", "6"),
    **dict.fromkeys("七柒", "7"),
    **dict.fromkeys("八捌", "8"),
    **dict.fromkeys("九玖", "9"),
}
_SYLLABLES = {
    "ling": "0",
    "dong": "0",
    "yi": "1",
    "yao": "1",
    "ya": "1",  # whisper writes a phone-line 幺 as 雅 or 鸭
    "er": "2",
    "liang": "2",
    "san": "3",
    "si": "4",
    "wu": "5",
    "liu": "6",
    "qi": "7",
    "ba": "8",
    "jiu": "9",
}
"""Toneless pinyin of the Mandarin digit syllables (and 幺, 两, 洞)."""
_KOREAN_DIGITS = {"영": "0", "공": "0", "일": "1", "이": "2", "삼": "3", "사": "4", "오": "5", "육": "6", "칠": "7",
                  "팔": "8", "구": "9"}  # fmt: skip
_ENGLISH_DIGITS = {
    "zero": "0",
    "oh": "0",
    "o": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
}
_REPEATS = {"double": 2, "triple": 3}
_WORDS = textpatterns.compile(r"[a-z]+|[0-9]+|[^\sa-z0-9]")


def normalise_digits(text: str, language: str) -> str:
    """The digits a digits-only answer says, everything else dropped ("幺三八 零零" → "13800")."""
    text = unicodedata.normalize("NFKC", text).lower()
    if language == "zh":
        return "".join(_mandarin_digit(char) for char in text)
    digits: list[str] = []
    repeat = 1
    for word in _WORDS.findall(text):
        if word in _REPEATS:
            repeat = _REPEATS[word]
            continue
        if word.isascii() and word.isdigit():
            digits.append(word[0] * repeat + word[1:])
        elif word in _ENGLISH_DIGITS:
            digits.append(_ENGLISH_DIGITS[word] * repeat)
        elif word in _KOREAN_DIGITS:
            digits.append(_KOREAN_DIGITS[word] * repeat)
        elif word in _HAN_DIGITS:
            digits.append(_HAN_DIGITS[word] * repeat)
        else:
            continue  # punctuation and other words do not end a "double"
        repeat = 1
    return "".join(digits)


def _mandarin_digit(char: str) -> str:
    if char.isascii() and char.isdigit():
        return char
    if char in _HAN_DIGITS:
        return _HAN_DIGITS[char]
    if "\u4e00" <= char <= "\u9fff":
        return _SYLLABLES.get(_pinyin(char), "")
    return ""


@lru_cache(maxsize=4096)
def _pinyin(char: str) -> str:
    from pypinyin import Style, lazy_pinyin

    return str(lazy_pinyin(char, style=Style.NORMAL)[0])


def keyed(keys: str) -> str:
    """A keyed entry: ``*`` clears what was keyed before it (Twilio's ``<Gather>`` passes it on)."""
    return keys.rsplit("*", 1)[-1].replace("#", "")


def edit_distance(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (x != y))
    return row[-1]


def closest(digits: str, known: Iterable[str]) -> str | None:
    """The one number the shop knows for this caller that ``digits`` is a near miss of, or None
    (nothing close, or two equally close)."""
    scored = sorted((edit_distance(digits, k), k) for k in dict.fromkeys(k for k in known if k))
    if not scored:
        return None
    distance, best = scored[0]
    if distance > CLOSE_ENOUGH * len(best):
        return None
    if len(scored) > 1 and scored[1][0] == distance:
        return None
    return best


def spaced(digits: str) -> str:
    """Digits one by one, as they are read back ("2 0 2 6")."""
    return " ".join(digits)


_READ_BACK = {
    "zh": "您输入的{what}是 {digits}，确认请按1，重新输入请按2。",
    "en": "You entered {what} {digits}. Press 1 to confirm, or 2 to enter it again.",
}
_WHAT = {ORDER_ID: {"zh": "订单号", "en": "order number"}, PHONE: {"zh": "手机号", "en": "phone number"}}
CONFIRM_PHRASES: dict[str, tuple[str, ...]] = {
    "zh": ("确认", "对", "正确", "是的", "没错"),
    "en": ("confirm", "yes", "correct", "that's right"),
}
REENTER_PHRASES: dict[str, tuple[str, ...]] = {
    "zh": ("重新输入", "不对", "错了", "重输"),
    "en": ("enter it again", "no", "wrong", "again"),
}
CONFIRM_KEY = "1"
REENTER_KEY = "2"


def read_back(kind: str, digits: str, language: str) -> str:
    """ "您输入的订单号是 2 0 2 6 …，确认请按1，重新输入请按2。" """
    template = _READ_BACK.get(language, _READ_BACK["zh"])
    what = _WHAT.get(kind, _WHAT[ORDER_ID])
    return template.format(what=what.get(language, what["zh"]), digits=spaced(digits))


def digit_words(language: str) -> Sequence[str]:
    return DIGIT_WORDS.get(language, DIGIT_WORDS["en"])
