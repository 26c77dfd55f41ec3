"""The after-sales knowledge base: rules and FAQ answers business people edit, and retrieval.

Owns the file format (``dialogue/knowledge/aftersales.yml``), its validation, finding the entry
a customer's question asks about and the "猜你想问" suggestions by order state.

Retrieval: the question goes through the NLU's normaliser (Traditional → Simplified, regional
words → Mandarin), then the file's own ``synonyms`` (邮费 → 运费 …).

- **Words:** character 1–3-gram TF-IDF plus English words; an entry scores the mean of its best
  single text's cosine (question or one phrasing) and the cosine with all its texts together, so
  one short lucky phrasing does not win alone.
- **Meaning:** the same multilingual-e5-small embedding the intent classifier uses
  (:mod:`nlu.embeddings`); an entry scores its best text's cosine, rescaled from
  [:data:`EMBEDDING_FLOOR`, 1] to [0, 1] (e5 puts unrelated short texts at 0.8 and more).
- An entry's score is their mean (:data:`EMBEDDING_WEIGHT`); below :data:`MIN_SCORE` nothing is
  answered. Without the embedding model (not installed) the words alone rank, against
  :data:`WORDS_ONLY_MIN_SCORE`.

The entries' embeddings are computed when the file is loaded (a few seconds) and kept under the
gateway's var directory and the checkout's ``var/`` (``kb-embeddings/``, keyed by a hash of the
entries' texts and the model), so a start with an unchanged file reads them back in milliseconds.

Must not know channels, the store or Rasa; it reads the NLU's normaliser and embedder only, so
dialect and Traditional questions meet the same Simplified text as the entries.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

import textpatterns
from errors import UserError
from nlu.normalize import TextNormaliser

log = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parent.parent

_ENTRY_ID = textpatterns.compile(r"[a-z0-9_]+")

ORDER_STATES = frozenset({"paid", "picking", "shipped", "delivered", "cancelled"})
MIN_SCORE = 0.35
"""Below this score the question is not one the knowledge base answers (calibrated by bench/kb.py
on heldout.yml: words and meaning together)."""
WORDS_ONLY_MIN_SCORE = 0.25
"""The threshold when no embedding model is available (TF-IDF alone)."""
EMBEDDING_WEIGHT = 0.5
"""Share of the embedding score in an entry's score; the rest is the TF-IDF score."""
EMBEDDING_FLOOR = 0.8
"""e5 cosine that counts as "unrelated" (score 0); 1.0 counts as the same question."""
BEST_TEXT_WEIGHT = 0.5
"""Weight of the best single text's cosine; the rest is the cosine with the entry's texts together."""
RUNNERS_UP = 3

_ENGLISH_WORD = textpatterns.compile(r"[a-z]{2,}")
_KEEP = textpatterns.compile(r"[\u3400-\u9fff0-9a-z]+")
_STOP_CHARS = frozenset("的了吗呢吧啊呀嘛么是我你们请问下个一这那有能可以要就还到什怎办候")
_STOP_GRAMS = frozenset(
    {"什么", "怎么", "么时", "时候", "什么时", "么时候", "怎么办", "么办", "可以", "能不", "不能", "还能",
     "一下", "请问", "你们", "我们", "我的", "的时候", "为什么", "怎么样", "么样"}
)  # fmt: skip
"""Question words: they say a question is asked, not what about, so they do not count."""
_ENGLISH_STOP = frozenset(
    {"the", "a", "an", "is", "are", "do", "does", "can", "i", "my", "me", "you", "your", "to", "of", "for", "it",
     "how", "what", "when", "will", "if", "in", "on", "be", "and", "or", "with", "where", "which", "who",
     "why", "this", "that", "there", "at", "from", "get", "have", "has", "was", "not", "any", "so", "up",
     "about", "much", "many", "did", "should", "would", "could", "just", "please", "we", "us", "they"}
)  # fmt: skip


class KnowledgeBaseError(UserError):
    """The knowledge-base file cannot be used; the message names the file, entry and field."""

    code = "invalid_knowledge_base"


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
                if (n == 1 and gram in _STOP_CHARS) or gram in _STOP_GRAMS:
                    continue
                features[gram] += 1
    for word in _ENGLISH_WORD.findall(lowered):
        if word not in _ENGLISH_STOP:
            features["w:" + word.rstrip("s")] += 1
    return features


class KnowledgeBase:
    def __init__(
        self,
        entries: list[KbEntry],
        normaliser: TextNormaliser | None = None,
        synonyms: dict[str, str] | None = None,
        *,
        embeddings: bool = True,
        cache_dir: Path | None = None,
    ) -> None:
        self.entries = entries
        self._normaliser = normaliser
        self.synonyms = dict(synonyms or {})
        """Variant → canonical word, applied after the normaliser (the file's ``synonyms`` section)."""
        self._synonym_pattern = (
            textpatterns.compile("|".join(textpatterns.escape(v) for v in sorted(self.synonyms, key=len, reverse=True)))
            if self.synonyms
            else None
        )
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
        together: list[Counter[str]] = [Counter() for _ in entries]
        for index, features in documents:
            together[index].update(features)
        self._entry_vectors = [self._vector(features) for features in together]
        self._text_entries = np.array([index for index, _ in texts], dtype=np.int64)
        self._embedder: Any = None
        self._embeddings: np.ndarray | None = None
        if embeddings:
            self._load_embeddings([text for _, text in texts], cache_dir)

    @property
    def uses_embeddings(self) -> bool:
        return self._embeddings is not None

    @property
    def min_score(self) -> float:
        """The default threshold for how this knowledge base ranks (with or without embeddings)."""
        return MIN_SCORE if self.uses_embeddings else WORDS_ONLY_MIN_SCORE

    def _load_embeddings(self, texts: list[str], cache_dir: Path | None) -> None:
        try:
            from nlu.embeddings import default_embedder

            self._embedder = default_embedder()
        except (ImportError, OSError) as exc:  # the words alone still rank
            log.warning("knowledge base: no embedding model (%s); ranking by words only", exc)
            return
        digest = hashlib.sha256(f"e5 {self._embedder.version} {self._embedder.max_tokens}\n".encode())
        for text in texts:
            digest.update(text.encode() + b"\n")
        if cache_dir is not None:
            directories = [cache_dir]
        else:  # the gateway's var directory, and the checkout's (shared by every gateway started from it)
            directories = [REPO_ROOT / "var" / "kb-embeddings"]
            if os.environ.get("GATEWAY_VAR_DIR"):
                directories.insert(0, Path(os.environ["GATEWAY_VAR_DIR"]) / "kb-embeddings")
        name = f"{digest.hexdigest()[:24]}.npy"
        for directory in directories:
            try:
                cached = np.load(directory / name)
            except (OSError, ValueError):
                continue
            if cached.shape == (len(texts), self._embedder.dim):
                self._embeddings = cached
                return
        self._embeddings = self._embedder.embed(texts, threads=os.cpu_count() or 1)
        for directory in directories:
            try:
                directory.mkdir(parents=True, exist_ok=True)
                partial = directory / f"{name}.partial.npy"
                np.save(partial, self._embeddings)
                partial.replace(directory / name)
            except OSError as exc:  # a read-only checkout still answers; it embeds again next start
                log.info("knowledge base: embeddings not cached at %s: %s", directory, exc)

    @cached_property
    def normaliser(self) -> TextNormaliser:
        return self._normaliser or TextNormaliser()

    def normalise(self, text: str) -> str:
        """The normaliser's text with the file's synonyms replaced by their canonical word."""
        normalised = self.normaliser(text).lower()
        if self._synonym_pattern is None:
            return normalised
        return self._synonym_pattern.sub(lambda match: self.synonyms[match.group(0)], normalised)

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
        return cls(entries, synonyms=_synonyms(raw.get("synonyms"), where))

    def answer(self, text: str, language: str = "zh", *, min_score: float | None = None) -> KbAnswer | None:
        """The entry the question asks about, or None when nothing scores ``min_score`` (default:
        :attr:`min_score`) or more.

        ``language`` is the reply language; matching works on any language the file holds."""
        min_score = self.min_score if min_score is None else min_score
        ranked = self._ranked(text)
        if not ranked or ranked[0][1] < min_score:
            return None
        top, score = ranked[0]
        runners = [(self.entries[i], s) for i, s in ranked[1 : 1 + RUNNERS_UP]]
        return KbAnswer(self.entries[top], score, runners)

    def _ranked(self, text: str) -> list[tuple[int, float]]:
        normalised = self.normalise(text)
        query = self._vector(_features(normalised))
        best = [0.0] * len(self.entries)
        for index, document in self._documents:
            score = _dot(query, document)
            if score > best[index]:
                best[index] = score
        words = [
            BEST_TEXT_WEIGHT * best[index] + (1 - BEST_TEXT_WEIGHT) * _dot(query, vector) if query else 0.0
            for index, vector in enumerate(self._entry_vectors)
        ]
        if self._embeddings is not None and normalised.strip():
            meaning = self._meaning(normalised)
            scores = [
                (index, EMBEDDING_WEIGHT * meaning[index] + (1 - EMBEDDING_WEIGHT) * words[index])
                for index in range(len(self.entries))
            ]
        else:
            scores = list(enumerate(words))
        return sorted((s for s in scores if s[1] > 0), key=lambda item: item[1], reverse=True)

    def _meaning(self, normalised: str) -> list[float]:
        """Per entry: its best text's e5 cosine with the question, rescaled to [0, 1]."""
        assert self._embeddings is not None
        vector = self._embedder.embed([normalised])[0]
        cosines = self._embeddings @ vector
        best = np.full(len(self.entries), -1.0)
        np.maximum.at(best, self._text_entries, cosines)
        return [float(v) for v in np.clip((best - EMBEDDING_FLOOR) / (1 - EMBEDDING_FLOOR), 0.0, 1.0)]

    def suggestions(self, order_status: str | None, language: str = "zh", limit: int = 3) -> list[KbEntry]:
        """Questions customers usually have next, for an order in this state ("猜你想问")."""
        if order_status is None:
            pool = list(self.entries)
        else:
            pool = [e for e in self.entries if order_status in e.order_states]
        order = {id(e): i for i, e in enumerate(self.entries)}
        return sorted(pool, key=lambda e: (e.priority, order[id(e)]))[:limit]


def _dot(query: dict[str, float], document: dict[str, float]) -> float:
    return sum(weight * document.get(term, 0.0) for term, weight in query.items())


def _synonyms(raw: Any, where: str) -> dict[str, str]:
    """``synonyms: {运费: [邮费, 快递费]}`` → {"邮费": "运费", "快递费": "运费"}."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise KnowledgeBaseError(f"{where}: synonyms: a mapping of word → list of variants is expected")
    variants: dict[str, str] = {}
    for canonical, words in raw.items():
        if not isinstance(canonical, str) or not canonical.strip():
            raise KnowledgeBaseError(f"{where}: synonyms: {canonical!r}: a word is expected")
        if not isinstance(words, list) or not words or not all(isinstance(w, str) and w.strip() for w in words):
            raise KnowledgeBaseError(f"{where}: synonyms.{canonical}: a non-empty list of words is expected")
        for word in words:
            word = word.strip().lower()
            if word in variants and variants[word] != canonical:
                raise KnowledgeBaseError(
                    f"{where}: synonyms.{canonical}: {word!r} is already a variant of {variants[word]}"
                )
            variants[word] = canonical.strip()
    return variants


def _entry(item: Any, where: str) -> KbEntry:
    if not isinstance(item, dict):
        raise KnowledgeBaseError(f"{where}: expected a mapping")
    entry_id = item.get("id")
    if not isinstance(entry_id, str) or not _ENTRY_ID.fullmatch(entry_id):
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
