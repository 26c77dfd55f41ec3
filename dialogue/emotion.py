"""Negative emotion in a customer's message: calm, negative or angry, and threats to complain.

Cues come from an editable lexicon (``dialogue/lexicon/emotion.yml``) with Mandarin and regional
phrasings, matched on normalised text; shouting (！！！, ??? , ALL CAPS) strengthens them and
negated phrases ("不生气") are removed first. Lexicon rules rather than a model: the hand-off
must be explainable ("which words made the bot hand over?") and cannot be trained here.

Knows nothing of channels, the store or Rasa.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Literal

import yaml

import textpatterns
from nlu.normalize import TextNormaliser

Level = Literal["calm", "negative", "angry"]

_SHOUT = textpatterns.compile(r"[!！]{2,}|[?？]{3,}|[!！][?？]|[?？][!！]")
_CAPS = textpatterns.compile(r"\b[A-Z]{4,}\b")


@dataclass(frozen=True, slots=True)
class Emotion:
    level: Level
    complaint_threat: bool = False
    cues: list[str] = field(default_factory=list)
    score: float = 0.0


@dataclass(frozen=True, slots=True)
class _Lexicon:
    angry: tuple[str, ...]
    negative: tuple[str, ...]
    threat: tuple[str, ...]
    calm: tuple[str, ...]
    english: textpatterns.Pattern
    english_kind: dict[str, str]


def _flatten(section: object) -> list[str]:
    if isinstance(section, dict):
        return [str(cue) for values in section.values() for cue in (values or [])]
    if isinstance(section, list):
        return [str(cue) for cue in section]
    return []


@lru_cache(maxsize=1)
def _lexicon() -> _Lexicon:
    raw = yaml.safe_load(resources.files("dialogue").joinpath("lexicon/emotion.yml").read_text(encoding="utf-8"))
    english_kind: dict[str, str] = {}
    chinese: dict[str, list[str]] = {"angry": [], "negative": [], "threat": []}
    for kind in ("angry", "negative", "threat"):
        section = raw.get(kind) or {}
        for variety, cues in section.items():
            for cue in cues or []:
                cue = str(cue)
                if variety == "english":
                    english_kind[cue.lower()] = kind
                else:
                    chinese[kind].append(cue)
    words = sorted(english_kind, key=len, reverse=True)
    english = textpatterns.compile(
        r"\b(" + "|".join(textpatterns.escape(w) for w in words) + r")\b", textpatterns.IGNORECASE
    )
    return _Lexicon(
        angry=tuple(sorted(chinese["angry"], key=len, reverse=True)),
        negative=tuple(sorted(chinese["negative"], key=len, reverse=True)),
        threat=tuple(sorted(chinese["threat"], key=len, reverse=True)),
        calm=tuple(_flatten(raw.get("calm"))),
        english=english,
        english_kind=english_kind,
    )


@lru_cache(maxsize=1)
def _normaliser() -> TextNormaliser:
    return TextNormaliser()


def detect_emotion(text: str) -> Emotion:
    """How upset the message sounds, with the cues that say so."""
    if not text.strip():
        return Emotion("calm")
    lexicon = _lexicon()
    shouting = bool(_SHOUT.search(text)) or bool(_CAPS.search(text))
    # The normaliser turns dialect into Mandarin (闹心 → 烦心, 冇眼睇 → 没有眼看); cues may be
    # written either way, so both spellings are searched.
    normalised = _normaliser().normalise(text).text.lower() + " | " + text.lower()
    for phrase in lexicon.calm:
        normalised = normalised.replace(phrase, " ")
    cues: dict[str, str] = {}
    for kind, table in (("threat", lexicon.threat), ("angry", lexicon.angry), ("negative", lexicon.negative)):
        for cue in table:
            if cue.lower() in normalised and not any(cue in found for found in cues):
                cues[cue] = kind
                normalised = normalised.replace(cue.lower(), " ")
    for match in lexicon.english.finditer(normalised):
        cues.setdefault(match.group(1).lower(), lexicon.english_kind[match.group(1).lower()])
    kinds = list(cues.values())
    score = 3.0 * kinds.count("angry") + 2.0 * kinds.count("threat") + 1.0 * kinds.count("negative")
    if shouting and cues:
        score += 1.0
    threat = "threat" in kinds
    if "angry" in kinds or (kinds.count("negative") >= 2 and shouting) or score >= 3.0:
        level: Level = "angry"
    elif cues:
        level = "negative"
    else:
        level = "calm"
    return Emotion(level, threat, sorted(cues), score)
