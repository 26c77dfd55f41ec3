"""The trained NLU against the held-out file, with the targets of the NLU issue as thresholds.

The held-out file was written apart from the training data and is never trained on; the first
tests check that this stays true.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest_asyncio

from nlu import RasaNluClient
from nlu.evaluation import EvalReport, evaluate, load_test_examples, reference_date
from nlu.normalize import default_normaliser
from nlu.project import PROJECT_DIR
from nlu.rasa_yaml import read_examples, strip_markup
from nlu.server import EmbeddedRasaServer
from nlu.understanding import DEFAULT_CONFIDENCE_THRESHOLD, UnderstandingClient

HELDOUT = PROJECT_DIR / "heldout.yml"
HELDOUT_REAL = PROJECT_DIR / "heldout_real.yml"
"""Real-style held-out set: frozen, never read by whoever writes training data; used through figures only."""
HELDOUT_INTENTS = {
    "order_status", "change_address", "change_delivery_time", "refund", "return_refund", "exchange", "resend",
    "compensation", "complaint", "urge", "invoice", "policy_question", "human_handoff", "greet", "goodbye",
    "affirm", "deny", "thanks", "inform", "out_of_scope",
}  # fmt: skip
"""The intents of the older written held-out file (it predates ``withdraw_request``)."""
INTENTS = HELDOUT_INTENTS | {"withdraw_request"}
TAGS = {
    "mandarin", "cantonese", "northeastern", "southwestern", "wu", "other_regional", "traditional", "english",
    "asr", "typo",
}  # fmt: skip


def training_examples() -> list[str]:
    return [e.text for path in sorted((PROJECT_DIR / "data").rglob("*.yml")) for e in read_examples(path)]


def test_training_data_covers_every_intent_with_150_examples_or_more() -> None:
    counts = Counter(e.intent for path in (PROJECT_DIR / "data").rglob("*.yml") for e in read_examples(path))
    assert set(counts) == INTENTS
    assert min(counts.values()) >= 150, counts


def test_at_least_half_of_every_intent_is_in_the_customers_chat_style() -> None:
    """data/chat/ holds the examples written the way customers type (short forms, fillers, typos,
    pinyin, emoji, platform words, order cards, English, Cantonese, Traditional)."""
    chat: Counter[str] = Counter()
    written: Counter[str] = Counter()
    for path in (PROJECT_DIR / "data").rglob("*.yml"):
        counter = chat if "chat" in path.relative_to(PROJECT_DIR / "data").parts else written
        counter.update(e.intent for e in read_examples(path))
    assert {intent for intent in INTENTS if chat[intent] < written[intent]} == set()


def test_the_real_style_heldout_file_is_not_in_the_training_data() -> None:
    """Disjoint after normalisation. Only counts are reported: nobody may read its examples."""
    examples = load_test_examples(HELDOUT_REAL)
    assert len(examples) >= 500
    assert {e.intent for e in examples} == INTENTS
    assert all(e.metadata.get("variety") and e.metadata.get("style") for e in examples)
    normalise = default_normaliser()
    trained = {normalise(text) for text in training_examples()}
    leaked = sum(normalise(e.text) in trained for e in examples)
    assert leaked == 0, f"{leaked} real-style held-out utterances are also in the training data"


def test_the_heldout_file_is_big_varied_and_not_in_the_training_data() -> None:
    examples = load_test_examples(HELDOUT)
    assert len(examples) >= 200
    assert {e.intent for e in examples} == HELDOUT_INTENTS
    tags = Counter(str(e.metadata.get("dialect")) for e in examples)
    assert set(tags) == TAGS
    assert min(tags.values()) >= 20, tags
    normalise = default_normaliser()
    trained = {normalise(text) for text in training_examples()}
    leaked = [e.text for e in examples if normalise(e.text) in trained]
    assert not leaked, f"held-out utterances also in the training data: {leaked}"


def test_markup_is_stripped_and_values_kept() -> None:
    text, entities = strip_markup('改到[听日]{"entity": "date", "value": "2026-11-21"}送到[SKU-CUP-02](sku)')
    assert text == "改到听日送到SKU-CUP-02"
    assert [(e.entity, e.value, e.span) for e in entities] == [
        ("date", "2026-11-21", "听日"),
        ("sku", "SKU-CUP-02", "SKU-CUP-02"),
    ]


@pytest_asyncio.fixture(scope="module")
async def heldout_report(rasa: EmbeddedRasaServer) -> AsyncIterator[EvalReport]:
    day = reference_date(HELDOUT)
    assert day is not None, "the held-out file pins its reference date"
    client = UnderstandingClient(
        RasaNluClient(rasa.url, rasa.token, timeout=30), confidence_threshold=0.0, today=lambda: day
    )
    try:
        yield await evaluate(client, load_test_examples(HELDOUT), threshold=DEFAULT_CONFIDENCE_THRESHOLD)
    finally:
        await client.close()


def test_heldout_intent_accuracy_is_at_least_95_percent(heldout_report: EvalReport) -> None:
    assert heldout_report.accuracy >= 0.95, [
        (p.example.text, p.label(heldout_report.threshold)) for p in heldout_report.errors()
    ]


def test_no_variety_falls_below_90_percent(heldout_report: EvalReport) -> None:
    weak = {tag: acc for tag, (acc, _) in heldout_report.per_tag().items() if acc < 0.90}
    assert not weak


def test_out_of_scope_is_rejected_at_least_90_percent_of_the_time(heldout_report: EvalReport) -> None:
    assert heldout_report.out_of_scope_rejection() >= 0.90


def test_order_ids_match_exactly_at_least_98_percent_of_the_time(heldout_report: EvalReport) -> None:
    accuracy, support = heldout_report.entity_accuracy()["order_id"]
    assert support >= 40
    assert accuracy >= 0.98


def test_the_report_is_consistent(heldout_report: EvalReport, tmp_path: Path) -> None:
    labels, matrix = heldout_report.confusion()
    assert sum(map(sum, matrix)) == heldout_report.total
    correct_cells = sum(matrix[i][i] for i in range(len(labels)))
    assert correct_cells <= round(heldout_report.accuracy * heldout_report.total)
    assert 0 < heldout_report.macro_f1 <= 1


@pytest_asyncio.fixture(scope="module")
async def real_report(rasa: EmbeddedRasaServer) -> AsyncIterator[EvalReport]:
    client = UnderstandingClient(
        RasaNluClient(rasa.url, rasa.token, timeout=30), confidence_threshold=0.0, today=lambda: date(2026, 12, 4)
    )
    try:
        yield await evaluate(client, load_test_examples(HELDOUT_REAL), threshold=DEFAULT_CONFIDENCE_THRESHOLD)
    finally:
        await client.close()


def test_real_style_floors(real_report: EvalReport) -> None:
    """Regression floors a few points under the measured figures (docs/nlu-measurements.md: 88 %, OOS
    ~80 %, multi-ask lists ~69 %), below issue 21's targets (95 %, 90 %). Figures only: a failure
    must not show an example of this file."""
    figures = {
        "accuracy": real_report.accuracy,
        "oos_rejection": real_report.out_of_scope_rejection(),
        "in_scope_rejection": real_report.false_rejection(),
        "multi_ask_lists": real_report.requests_accuracy()["multi_ask"][0],
    }
    assert figures["accuracy"] >= 0.84, figures
    assert figures["oos_rejection"] >= 0.70, figures
    assert figures["in_scope_rejection"] <= 0.06, figures
    assert figures["multi_ask_lists"] >= 0.50, figures
    assert real_report.per_class()["withdraw_request"].recall >= 0.70, figures
