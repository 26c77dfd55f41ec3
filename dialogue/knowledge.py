"""The after-sales knowledge base: rules and FAQ answers business people edit, and retrieval.

Owns the file format (``dialogue/knowledge/aftersales.yml``), its validation, finding the entry
a customer's question asks about (character n-gram TF-IDF over the normalised question and its
phrasings, plus English words) and the "猜你想问" suggestions by order state.

Must not know channels, the store or Rasa; it reads the NLU's normaliser only, so dialect and
Traditional questions meet the same Simplified text as the entries.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from nlu.normalize import TextNormaliser

ORDER_STATES = frozenset({"paid", "picking", "shipped", "delivered", "cancelled"})
MIN_SCORE = 0.33
"""Below this cosine the question is not one the knowledge base answers (calibrated by bench/kb.py)."""
RUNNERS_UP = 3

_ENGLISH_WORD = re.compile(r"[a-z]{2,}")
_KEEP = re.compile(r"[\u3400-\u9fff0-9a-z]+")
_STOP_CHARS = frozenset("的了吗呢吧啊呀嘛么是我你们请问下个一这那有能可以要就还到")
_ENGLISH_STOP = frozenset(
    {"the", "a", "an", "is", "are", "do", "does", "can", "i", "my", "me", "you", "your", "to", "of", "for", "it",
     "how", "what", "when", "will", "if", "in", "on", "be", "and", "or", "with"}
)  # fmt: skip


class KnowledgeBaseError(ValueError):
    """The knowledge-base file cannot be used; the message names the file, entry and field."""


@dataclass(frozen=True, slots=True)
class KbEntry:
    id: str
    category: str
    question: dict[str, str]
    answer: dict[str, str]
    phrasings: list[str] = field(default_factory=list)
    order_states: list[str] = field(default_factory=list)
    priority: int = 100

    def question_in(self, language: str) -> str:
        return self.question.get(language) or self.question["zh"]

    def answer_in(self, language: str) -> str:
        return self.answer.get(language) or self.answer["zh"]


@dataclass(frozen=True, slots=True)
class KbAnswer:
    entry: KbEntry
    score: float
    runners_up: list[tuple[KbEntry, float]]


def _features(text: str) -> Counter[str]:
    """Character 1–3-grams of the Chinese (stop characters dropped from unigrams) and English words."""
    lowered = text.lower()
    features: Counter[str] = Counter()
    for chunk in _KEEP.findall(lowered):
        if chunk.isascii():
            continue
        for n in (1, 2, 3):
            for i in range(len(chunk) - n + 1):
                gram = chunk[i : i + n]
                if n == 1 and gram in _STOP_CHARS:
                    continue
                features[gram] += 1
    for word in _ENGLISH_WORD.findall(lowered):
        if word not in _ENGLISH_STOP:
            features["w:" + word.rstrip("s")] += 1
    return features


class KnowledgeBase:
    def __init__(self, entries: list[KbEntry], normaliser: TextNormaliser | None = None) -> None:
        self.entries = entries
        self._normaliser = normaliser
        texts: list[tuple[int, str]] = []
        for index, entry in enumerate(entries):
            for text in (*entry.question.values(), *entry.phrasings):
                texts.append((index, self.normalise(text)))
        documents = [(index, _features(text)) for index, text in texts]
        frequency: Counter[str] = Counter()
        for _, features in documents:
            frequency.update(set(features))
        total = len(documents) or 1
        self._idf = {term: math.log((1 + total) / (1 + count)) + 1.0 for term, count in frequency.items()}
        self._documents = [(index, self._vector(features)) for index, features in documents]

    @cached_property
    def normaliser(self) -> TextNormaliser:
        return self._normaliser or TextNormaliser()

    def normalise(self, text: str) -> str:
        return self.normaliser(text)

    def _vector(self, features: Counter[str]) -> dict[str, float]:
        vector = {t: (1 + math.log(c)) * self._idf.get(t, 0.0) for t, c in features.items() if t in self._idf}
        norm = math.sqrt(sum(v * v for v in vector.values())) or 1.0
        return {t: v / norm for t, v in vector.items()}

    def __len__(self) -> int:
        return len(self.entries)

    @classmethod
    def load(cls, path: Path | None = None) -> KnowledgeBase:
        """The given file, or the one shipped in the ``dialogue`` package."""
        where = str(path) if path else "dialogue/knowledge/aftersales.yml"
        try:
            if path is None:
                text = resources.files("dialogue").joinpath("knowledge/aftersales.yml").read_text(encoding="utf-8")
            else:
                text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise KnowledgeBaseError(f"{where}: {exc.strerror or exc}") from exc
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise KnowledgeBaseError(f"{where}: invalid YAML: {exc}") from exc
        if not isinstance(raw, dict) or not isinstance(raw.get("entries"), list) or not raw["entries"]:
            raise KnowledgeBaseError(f"{where}: expected a mapping with a non-empty 'entries' list")
        entries: list[KbEntry] = []
        seen: set[str] = set()
        for index, item in enumerate(raw["entries"]):
            entry = _entry(item, f"{where}: entries[{index}]")
            if entry.id in seen:
                raise KnowledgeBaseError(f"{where}: entries[{index}] ({entry.id}): duplicate id")
            seen.add(entry.id)
            entries.append(entry)
        return cls(entries)

    def answer(self, text: str, language: str = "zh") -> KbAnswer | None:
        """The entry the question asks about, or None when nothing is close enough."""
        query = self._vector(_features(self.normalise(text)))
        if not query:
            return None
        best: dict[int, float] = {}
        for index, document in self._documents:
            score = sum(weight * document.get(term, 0.0) for term, weight in query.items())
            if score > best.get(index, 0.0):
                best[index] = score
        ranked = sorted(best.items(), key=lambda item: item[1], reverse=True)
        if not ranked or ranked[0][1] < MIN_SCORE:
            return None
        top, score = ranked[0]
        runners = [(self.entries[i], s) for i, s in ranked[1 : 1 + RUNNERS_UP]]
        return KbAnswer(self.entries[top], score, runners)

    def suggestions(self, order_status: str | None, language: str = "zh", limit: int = 3) -> list[KbEntry]:
        """Questions customers usually have next, for an order in this state ("猜你想问")."""
        if order_status is None:
            pool = list(self.entries)
        else:
            pool = [e for e in self.entries if order_status in e.order_states]
        order = {id(e): i for i, e in enumerate(self.entries)}
        return sorted(pool, key=lambda e: (e.priority, order[id(e)]))[:limit]


def _entry(item: Any, where: str) -> KbEntry:
    if not isinstance(item, dict):
        raise KnowledgeBaseError(f"{where}: expected a mapping")
    entry_id = item.get("id")
    if not isinstance(entry_id, str) or not re.fullmatch(r"[a-z0-9_]+", entry_id):
        raise KnowledgeBaseError(f"{where}.id: a lower-case id of letters, digits and _ is required")
    where = f"{where} ({entry_id})"
    texts: dict[str, dict[str, str]] = {}
    for name in ("question", "answer"):
        value = item.get(name)
        if not isinstance(value, dict) or not isinstance(value.get("zh"), str) or not value["zh"].strip():
            raise KnowledgeBaseError(f"{where}.{name}: a mapping with a non-empty 'zh' text is required")
        texts[name] = {str(k): str(v).strip() for k, v in value.items()}
    phrasings = item.get("phrasings", [])
    if not isinstance(phrasings, list) or not all(isinstance(p, str) for p in phrasings):
        raise KnowledgeBaseError(f"{where}.phrasings: a list of texts is expected")
    states = item.get("order_states", [])
    if not isinstance(states, list) or any(s not in ORDER_STATES for s in states):
        raise KnowledgeBaseError(f"{where}.order_states: each must be one of {', '.join(sorted(ORDER_STATES))}")
    priority = item.get("priority", 100)
    if not isinstance(priority, int):
        raise KnowledgeBaseError(f"{where}.priority: an integer is expected")
    category = item.get("category", "")
    return KbEntry(
        id=entry_id,
        category=str(category),
        question=texts["question"],
        answer=texts["answer"],
        phrasings=[p.strip() for p in phrasings if p.strip()],
        order_states=list(states),
        priority=priority,
    )
