"""The text normaliser that runs before Rasa, on typed text and on speech transcripts alike.

In order: control characters out (NUL → space, zero-width and direction marks dropped),
full-width → half-width, Traditional → Simplified (OpenCC's own data, shipped in its
wheel), the regional lexicon (``nlu/lexicon/regional.yml``: Cantonese, Northeastern, Southwestern,
Wu and other regional words, speech-recognition mishearings, pinyin typos → Mandarin), then
Chinese numerals → digits where they are numbers (:mod:`nlu.numerals`).

Training data goes through the same function (see :mod:`nlu.project`), so the model learns the
form it will be asked about. Knows nothing of intents, Rasa or the store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import opencc
import yaml

import textpatterns
from nlu.numerals import digits_for_chinese_numerals

LEXICON_PATH = Path(__file__).resolve().parent / "lexicon" / "regional.yml"

_CJK = textpatterns.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_LATIN_LETTER = textpatterns.compile(r"[A-Za-z]")
_SPACES = textpatterns.compile(r"\s+")
_CONTROL = textpatterns.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
"""Control characters (NUL …): a space, so they neither reach Rasa nor join two words."""
_INVISIBLE = textpatterns.compile(r"[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
"""Zero-width and direction-override characters: dropped."""


@dataclass(frozen=True, slots=True)
class NormalisedText:
    original: str
    text: str
    language: str
    """``zh``, ``en``, or ``und`` when the text has no words (a bare number, an emoji)."""
    traditional: bool
    """The original was written (at least partly) in Traditional characters."""
    varieties: tuple[str, ...]
    """Lexicon sections that matched, e.g. ``("cantonese", "asr")``: a hint, not a classifier."""


@dataclass(frozen=True, slots=True)
class Lexicon:
    """Longest-match phrase replacement with protected words."""

    replacements: Mapping[str, tuple[str, str]]  # key → (replacement, section)
    keep: frozenset[str]
    longest: int

    @classmethod
    def load(cls, path: Path = LEXICON_PATH) -> Lexicon:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return cls.from_sections(data.get("dialects", {}), data.get("keep", []))

    @classmethod
    def from_sections(cls, sections: Mapping[str, Mapping[str, str]], keep: Iterable[str] = ()) -> Lexicon:
        replacements: dict[str, tuple[str, str]] = {}
        for section, entries in sections.items():
            for key, value in (entries or {}).items():
                key = str(key).lower()
                if key in replacements and replacements[key][0] != str(value):
                    raise ValueError(f"lexicon key {key!r} is in both {replacements[key][1]} and {section}")
                replacements[key] = (str(value), section)
        keep_words = frozenset(str(k).lower() for k in keep)
        longest = max((len(k) for k in [*replacements, *keep_words]), default=0)
        return cls(replacements, keep_words, longest)

    def apply(self, text: str) -> tuple[str, list[str]]:
        """Replace regional words; returns the text and the sections that matched."""
        lowered = text.lower()  # pinyin typos match whatever the case; CJK is unaffected
        out: list[str] = []
        sections: list[str] = []
        i = 0
        while i < len(text):
            for size in range(min(self.longest, len(text) - i), 0, -1):
                piece = lowered[i : i + size]
                if piece in self.keep:
                    out.append(text[i : i + size])
                    i += size
                    break
                hit = self.replacements.get(piece)
                if hit is not None and not _inside_latin_word(text, i, size):
                    out.append(hit[0])
                    if hit[1] not in sections:
                        sections.append(hit[1])
                    i += size
                    break
            else:
                out.append(text[i])
                i += 1
        return "".join(out), sections


def _inside_latin_word(text: str, start: int, size: int) -> bool:
    """A pinyin key must be a whole word: "kefu" yes, "kefuxyz" no."""
    if not text[start].isascii():
        return False
    before = text[start - 1 : start]
    after = text[start + size : start + size + 1]
    return bool(_LATIN_LETTER.match(before)) or bool(_LATIN_LETTER.match(after))


def to_half_width(text: str) -> str:
    """Full-width ASCII forms (ＡＢＣ１２３，！) and the ideographic space to their ASCII forms."""
    chars = []
    for char in text:
        code = ord(char)
        if code == 0x3000:
            chars.append(" ")
        elif 0xFF01 <= code <= 0xFF5E:
            chars.append(chr(code - 0xFEE0))
        else:
            chars.append(char)
    return "".join(chars)


def _has_non_gb2312_hanzi(text: str) -> bool:
    for char in _CJK.findall(text):
        try:
            char.encode("gb2312")
        except UnicodeEncodeError:
            return True
    return False


def detect_language(text: str) -> str:
    cjk = len(_CJK.findall(text))
    latin = len(_LATIN_LETTER.findall(text))
    if cjk and cjk * 3 >= latin / 2:  # "我要refund" is Chinese; "my order 订单" is English
        return "zh"
    if latin >= 2:
        return "en"
    return "zh" if cjk else "und"


class TextNormaliser:
    def __init__(self, lexicon: Lexicon | None = None) -> None:
        self.lexicon = lexicon or Lexicon.load()
        self._t2s = opencc.OpenCC("t2s.json")

    def normalise(self, text: str) -> NormalisedText:
        half = to_half_width(_INVISIBLE.sub("", _CONTROL.sub(" ", text)))
        # OpenCC's phrase table also rewrites some Simplified text (万一坏了 → 万一坯了), so
        # only text with characters outside GB2312 (訂, 單, 喺 …) is converted.
        simplified = self._t2s.convert(half) if _has_non_gb2312_hanzi(half) else half
        traditional = simplified != half
        mandarin, sections = self.lexicon.apply(simplified)
        digits = digits_for_chinese_numerals(mandarin)
        cleaned = _SPACES.sub(" ", digits).strip()
        return NormalisedText(
            original=text,
            text=cleaned,
            language=detect_language(cleaned),
            traditional=traditional,
            varieties=tuple(sections),
        )

    def __call__(self, text: str) -> str:
        return self.normalise(text).text


@lru_cache(maxsize=1)
def default_normaliser() -> TextNormaliser:
    return TextNormaliser()
