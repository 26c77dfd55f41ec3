"""Evaluation of the whole NLU (normaliser, Rasa, entity rules, threshold) on Rasa NLU test data.

Metrics: intent accuracy, macro F1, per intent, per variety tag (each example's ``variety``
metadata, or ``dialect`` in older files) and per style tag (``style``: one tag or a list, e.g.
``[short, jargon]``), out-of-scope rejection, entity accuracy per type, parse latency, and a
threshold calibration table. A rejection (``nlu_fallback``, the dialogue then asks to rephrase)
counts as the right answer for ``out_of_scope`` examples and as a miss for every other intent.

Several requests in one message: an example's ``requests`` metadata lists its intents in order
(the example's intent is the first). Its intent is scored like any other (the parse's top intent
must be the first request), and the parse's ``requests`` list is scored against the whole list:
exactly the same intents in the same order. A one-request example is scored on ``requests`` too
(one request, its intent), so splitting a message that holds one request counts against it.

A held-out file nobody may read (``heldout_real.yml``) is evaluated with ``errors_shown=0``: the
report then holds figures only, no example text.
"""

from __future__ import annotations

import re
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from nlu.client import FALLBACK_INTENT, NluClient, Request
from nlu.normalize import TextNormaliser, default_normaliser
from nlu.rasa_yaml import Example, read_examples

OUT_OF_SCOPE = "out_of_scope"
UNTAGGED = "untagged"
CALIBRATION_THRESHOLDS = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
_REFERENCE_DATE = re.compile(r"^#\s*reference[_ -]date:\s*(\d{4}-\d{2}-\d{2})", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Prediction:
    example: Example
    intent: str
    confidence: float
    entities: tuple[tuple[str, str], ...]
    normalized_text: str
    latency_ms: float
    requests: tuple[tuple[str, float], ...] = ()
    """The parse's ``requests`` in order: (intent, confidence); empty if the parse had none."""

    def label(self, threshold: float) -> str:
        return FALLBACK_INTENT if self.confidence < threshold or self.intent == FALLBACK_INTENT else self.intent

    def correct(self, threshold: float) -> bool:
        label = self.label(threshold)
        if self.example.intent == OUT_OF_SCOPE:
            return label in (OUT_OF_SCOPE, FALLBACK_INTENT)
        return label == self.example.intent

    @property
    def tag(self) -> str:
        """The variety tag: ``variety`` metadata, else ``dialect`` (older files)."""
        metadata = self.example.metadata
        return str(metadata.get("variety", metadata.get("dialect", UNTAGGED)))

    @property
    def styles(self) -> tuple[str, ...]:
        style = self.example.metadata.get("style")
        if style is None:
            return ()
        return tuple(str(s) for s in style) if isinstance(style, list) else (str(style),)

    @property
    def expected_requests(self) -> tuple[str, ...]:
        requests = self.example.metadata.get("requests")
        if isinstance(requests, list) and requests:
            return tuple(str(r) for r in requests)
        return (self.example.intent,)

    @property
    def multi_ask(self) -> bool:
        return len(self.expected_requests) > 1

    def request_labels(self, threshold: float) -> tuple[str, ...]:
        """The parse's requests as labels (a request below ``threshold`` is a rejection)."""
        if not self.requests:
            return (self.label(threshold),)
        return tuple(
            FALLBACK_INTENT if confidence < threshold or name == FALLBACK_INTENT else name
            for name, confidence in self.requests
        )

    def requests_correct(self, threshold: float) -> bool:
        """Every request found, in order, and nothing else."""
        expected = self.expected_requests
        if expected == (OUT_OF_SCOPE,):
            return self.correct(threshold)
        return self.request_labels(threshold) == expected


@dataclass(frozen=True, slots=True)
class ClassScore:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(slots=True)
class EvalReport:
    threshold: float
    predictions: list[Prediction]
    entity_matches: dict[str, list[bool]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return len(self.predictions)

    @property
    def accuracy(self) -> float:
        return _ratio(sum(p.correct(self.threshold) for p in self.predictions), self.total)

    def per_class(self) -> dict[str, ClassScore]:
        """Precision/recall/F1 per gold intent; a rejection is scored as ``out_of_scope``."""
        gold = Counter(p.example.intent for p in self.predictions)
        predicted: Counter[str] = Counter()
        hits: Counter[str] = Counter()
        for p in self.predictions:
            label = p.label(self.threshold)
            label = OUT_OF_SCOPE if label == FALLBACK_INTENT else label
            predicted[label] += 1
            if label == p.example.intent:
                hits[label] += 1
        scores = {}
        for intent in sorted(gold):
            precision = _ratio(hits[intent], predicted[intent])
            recall = _ratio(hits[intent], gold[intent])
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
            scores[intent] = ClassScore(precision, recall, f1, gold[intent])
        return scores

    @property
    def macro_f1(self) -> float:
        scores = self.per_class()
        return statistics.fmean(s.f1 for s in scores.values()) if scores else 0.0

    def per_tag(self) -> dict[str, tuple[float, int]]:
        by_tag: dict[str, list[bool]] = defaultdict(list)
        for p in self.predictions:
            by_tag[p.tag].append(p.correct(self.threshold))
        return {tag: (_ratio(sum(v), len(v)), len(v)) for tag, v in sorted(by_tag.items())}

    def per_style(self) -> dict[str, tuple[float, int]]:
        by_style: dict[str, list[bool]] = defaultdict(list)
        for p in self.predictions:
            for style in p.styles:
                by_style[style].append(p.correct(self.threshold))
        return {style: (_ratio(sum(v), len(v)), len(v)) for style, v in sorted(by_style.items())}

    def requests_accuracy(self) -> dict[str, tuple[float, int]]:
        """Whole ``requests`` lists right: multi-ask examples, one-request examples (not split), all."""
        groups: dict[str, list[bool]] = {"multi_ask": [], "single": [], "all": []}
        for p in self.predictions:
            right = p.requests_correct(self.threshold)
            groups["multi_ask" if p.multi_ask else "single"].append(right)
            groups["all"].append(right)
        return {name: (_ratio(sum(v), len(v)), len(v)) for name, v in groups.items()}

    def out_of_scope_rejection(self, threshold: float | None = None) -> float:
        threshold = self.threshold if threshold is None else threshold
        oos = [p for p in self.predictions if p.example.intent == OUT_OF_SCOPE]
        return _ratio(sum(p.correct(threshold) for p in oos), len(oos))

    def false_rejection(self, threshold: float | None = None) -> float:
        """In-scope messages the threshold turns into "please rephrase"."""
        threshold = self.threshold if threshold is None else threshold
        inscope = [p for p in self.predictions if p.example.intent != OUT_OF_SCOPE]
        rejected = sum(p.label(threshold) in (FALLBACK_INTENT, OUT_OF_SCOPE) for p in inscope)
        return _ratio(rejected, len(inscope))

    def calibration(self) -> list[dict[str, float]]:
        rows = []
        for threshold in CALIBRATION_THRESHOLDS:
            inscope = [p for p in self.predictions if p.example.intent != OUT_OF_SCOPE]
            rows.append(
                {
                    "threshold": threshold,
                    "accuracy": _ratio(sum(p.correct(threshold) for p in self.predictions), self.total),
                    "in_scope_accuracy": _ratio(sum(p.correct(threshold) for p in inscope), len(inscope)),
                    "oos_rejection": self.out_of_scope_rejection(threshold),
                    "false_rejection": self.false_rejection(threshold),
                }
            )
        return rows

    def entity_accuracy(self) -> dict[str, tuple[float, int]]:
        return {name: (_ratio(sum(v), len(v)), len(v)) for name, v in sorted(self.entity_matches.items())}

    def latency_ms(self) -> dict[str, float]:
        values = sorted(p.latency_ms for p in self.predictions)
        if not values:
            return {"p50": 0.0, "p95": 0.0, "max": 0.0}
        return {"p50": _percentile(values, 50), "p95": _percentile(values, 95), "max": values[-1]}

    def confusion(self) -> tuple[list[str], list[list[int]]]:
        """Rows: gold intent; columns: predicted label (``nlu_fallback`` kept as its own column)."""
        labels = sorted(
            {p.example.intent for p in self.predictions} | {p.label(self.threshold) for p in self.predictions}
        )
        if FALLBACK_INTENT in labels:
            labels.remove(FALLBACK_INTENT)
            labels.append(FALLBACK_INTENT)
        index = {label: i for i, label in enumerate(labels)}
        matrix = [[0] * len(labels) for _ in labels]
        for p in self.predictions:
            matrix[index[p.example.intent]][index[p.label(self.threshold)]] += 1
        return labels, matrix

    def errors(self) -> list[Prediction]:
        return [p for p in self.predictions if not p.correct(self.threshold)]

    def as_dict(self, errors_shown: int | None = None) -> dict[str, Any]:
        """The report; ``errors_shown`` limits the misclassified examples listed (0: none, no text)."""
        errors = self.errors() if errors_shown is None else self.errors()[: max(0, errors_shown)]
        return {
            "examples": self.total,
            "threshold": self.threshold,
            "intent_accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "out_of_scope_rejection": self.out_of_scope_rejection(),
            "false_rejection": self.false_rejection(),
            "per_intent": {k: vars_of(v) for k, v in self.per_class().items()},
            "per_tag": {k: {"accuracy": a, "support": n} for k, (a, n) in self.per_tag().items()},
            "per_style": {k: {"accuracy": a, "support": n} for k, (a, n) in self.per_style().items()},
            "requests": {k: {"accuracy": a, "support": n} for k, (a, n) in self.requests_accuracy().items()},
            "entities": {k: {"accuracy": a, "support": n} for k, (a, n) in self.entity_accuracy().items()},
            "latency_ms": self.latency_ms(),
            "calibration": self.calibration(),
            "errors": [
                {
                    "text": p.example.text,
                    "normalized_text": p.normalized_text,
                    "tag": p.tag,
                    "expected": p.example.intent,
                    "predicted": p.label(self.threshold),
                    "confidence": round(p.confidence, 3),
                }
                for p in errors
            ],
        }


def vars_of(score: ClassScore) -> dict[str, float]:
    return {"precision": score.precision, "recall": score.recall, "f1": score.f1, "support": score.support}


def reference_date(path: Path) -> date | None:
    """A test file may pin the date its relative dates mean: ``# reference_date: 2026-11-20``."""
    match = _REFERENCE_DATE.search(path.read_text(encoding="utf-8"))
    return date.fromisoformat(match.group(1)) if match else None


def load_test_examples(path: Path) -> list[Example]:
    return read_examples(path)


async def evaluate(
    client: NluClient,
    examples: Sequence[Example],
    *,
    threshold: float,
    normaliser: TextNormaliser | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> EvalReport:
    """Parse every example through ``client`` (which must not apply a threshold itself)."""
    normaliser = normaliser or default_normaliser()
    report = EvalReport(threshold=threshold, predictions=[])
    for number, example in enumerate(examples, 1):
        started = time.perf_counter()
        result = await client.parse(example.text)
        latency = (time.perf_counter() - started) * 1000
        predicted = tuple((e.entity, _comparable(e.value)) for e in result.entities)
        report.predictions.append(
            Prediction(
                example=example,
                intent=result.intent.name or FALLBACK_INTENT,
                confidence=result.intent.confidence,
                entities=predicted,
                normalized_text=str(getattr(result, "normalized_text", example.text)),
                latency_ms=latency,
                requests=_requests_of(result),
            )
        )
        for expected in example.entities:
            wanted = _comparable(expected.value)
            if expected.entity == "address":
                wanted = normaliser(expected.value)
            found = any(name == expected.entity and _same(value, wanted) for name, value in predicted)
            report.entity_matches.setdefault(expected.entity, []).append(found)
        if on_progress is not None:
            on_progress(number, len(examples))
    return report


def _requests_of(result: Any) -> tuple[tuple[str, float], ...]:
    requests = getattr(result, "requests", None)
    if not isinstance(requests, list):
        return ()
    found = []
    for request in requests:
        if isinstance(request, Request):
            found.append((request.intent.name or FALLBACK_INTENT, request.intent.confidence))
            continue
        intent = request.get("intent") if isinstance(request, dict) else None
        if isinstance(intent, dict):
            found.append((str(intent.get("name") or FALLBACK_INTENT), float(intent.get("confidence") or 0.0)))
    return tuple(found)


def _comparable(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _same(found: str, wanted: str) -> bool:
    if found == wanted:
        return True
    try:
        return float(found) == float(wanted)
    except ValueError:
        return re.sub(r"\s+", "", found) == re.sub(r"\s+", "", wanted)


def write_confusion_png(report: EvalReport, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, matrix = report.confusion()
    size = max(6.0, 0.45 * len(labels) + 2)
    figure, axes = plt.subplots(figsize=(size + 1, size))
    image = axes.imshow(matrix, cmap="Blues")
    axes.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
    axes.set_yticks(range(len(labels)), labels, fontsize=8)
    axes.set_xlabel("predicted")
    axes.set_ylabel("expected")
    axes.set_title(f"Intent confusion (accuracy {report.accuracy:.1%}, threshold {report.threshold:g})")
    peak = max((max(row) for row in matrix), default=0)
    for row, counts in enumerate(matrix):
        for column, count in enumerate(counts):
            if count:
                colour = "white" if count > peak / 2 else "black"
                axes.text(column, row, str(count), ha="center", va="center", fontsize=7, color=colour)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def format_report(report: EvalReport, errors_shown: int = 25) -> str:
    lines = [
        f"examples              {report.total}",
        f"threshold             {report.threshold:g}",
        f"intent accuracy       {report.accuracy:.1%}",
        f"macro F1              {report.macro_f1:.3f}",
        f"out-of-scope rejected {report.out_of_scope_rejection():.1%}",
        f"in-scope rejected     {report.false_rejection():.1%}",
        "latency ms            p50 {p50:.1f}  p95 {p95:.1f}  max {max:.1f}".format(**report.latency_ms()),
        "",
        f"{'intent':24} {'prec':>6} {'recall':>6} {'f1':>6} {'n':>4}",
    ]
    for intent, score in report.per_class().items():
        lines.append(f"{intent:24} {score.precision:6.1%} {score.recall:6.1%} {score.f1:6.3f} {score.support:4d}")
    lines += ["", f"{'variety tag':24} {'accuracy':>8} {'n':>4}"]
    lines += [f"{tag:24} {acc:8.1%} {n:4d}" for tag, (acc, n) in report.per_tag().items()]
    styles = report.per_style()
    if styles:
        lines += ["", f"{'style tag':24} {'accuracy':>8} {'n':>4}"]
        lines += [f"{style:24} {acc:8.1%} {n:4d}" for style, (acc, n) in styles.items()]
    requests = report.requests_accuracy()
    lines += ["", "whole requests list right (intents in order, nothing extra):"]
    lines += [f"  {name:22} {acc:8.1%} {n:4d}" for name, (acc, n) in requests.items() if n]
    entities = report.entity_accuracy()
    if entities:
        lines += ["", f"{'entity':24} {'exact':>8} {'n':>4}"]
        lines += [f"{name:24} {acc:8.1%} {n:4d}" for name, (acc, n) in entities.items()]
    lines += ["", "threshold  accuracy  in-scope  oos-rejected  in-scope-rejected"]
    lines += [
        f"{row['threshold']:9.2f}  {row['accuracy']:8.1%}  {row['in_scope_accuracy']:8.1%}"
        f"  {row['oos_rejection']:12.1%}  {row['false_rejection']:17.1%}"
        for row in report.calibration()
    ]
    errors = report.errors()
    if errors and errors_shown <= 0:
        lines += ["", f"misclassified: {len(errors)} (examples not shown)"]
    elif errors:
        lines += ["", f"misclassified ({len(errors)}, first {min(errors_shown, len(errors))}):"]
        for p in errors[:errors_shown]:
            lines.append(
                f"  [{p.tag}] {p.example.text!r} → {p.label(report.threshold)} "
                f"({p.confidence:.2f}), expected {p.example.intent}"
            )
    return "\n".join(lines)


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _percentile(sorted_values: Sequence[float], percent: float) -> float:
    rank = max(0, min(len(sorted_values) - 1, round(percent / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]
