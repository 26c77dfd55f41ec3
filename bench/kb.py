"""Knowledge-base retrieval on the held-out questions: top-1 accuracy, out-of-scope rejection,
per variety, and how the threshold trades them off — words and meaning together (TF-IDF + e5
embeddings, the default), and words alone for comparison.

    .venv/bin/python bench/kb.py [--file dialogue/knowledge/heldout.yml] [--file …]

Without --file: heldout.yml (used for decisions) and heldout_fresh.yml (not tuned on).
Targets (issue 21): fresh questions ≥ 90 % top-1, out-of-scope rejected ≥ 90 %.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dialogue.knowledge import WORDS_ONLY_MIN_SCORE, KnowledgeBase

KNOWLEDGE = Path(__file__).resolve().parent.parent / "dialogue" / "knowledge"
HELDOUT = KNOWLEDGE / "heldout.yml"
FRESH = KNOWLEDGE / "heldout_fresh.yml"


def evaluate(kb: KnowledgeBase, questions: list[dict[str, str]], threshold: float) -> dict[str, float]:
    right = in_scope = rejected = out_scope = 0
    by_tag: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for q in questions:
        found = kb.answer(q["text"], min_score=threshold)
        got = found.entry.id if found is not None else "none"
        if q["expect"] == "none":
            out_scope += 1
            rejected += got == "none"
        else:
            in_scope += 1
            right += got == q["expect"]
            by_tag[q["tag"]][0] += got == q["expect"]
            by_tag[q["tag"]][1] += 1
    result = {"accuracy": right / in_scope, "rejection": rejected / out_scope if out_scope else 1.0}
    result.update({f"tag:{t}": r / n for t, (r, n) in sorted(by_tag.items())})
    result.update({f"n:{t}": float(n) for t, (_, n) in by_tag.items()})
    result.update({"in_scope": float(in_scope), "out_scope": float(out_scope)})
    return result


def report(kb: KnowledgeBase, path: Path, sweep: tuple[float, ...]) -> None:
    questions = yaml.safe_load(path.read_text(encoding="utf-8"))["questions"]
    started = time.perf_counter()
    result = evaluate(kb, questions, kb.min_score)
    per_question = (time.perf_counter() - started) / len(questions)
    print(
        f"{path.name}: threshold {kb.min_score}: top-1 accuracy {result['accuracy']:.1%} of "
        f"{result['in_scope']:.0f}, out-of-scope rejected {result['rejection']:.1%} of {result['out_scope']:.0f}, "
        f"{per_question * 1000:.1f} ms per question"
    )
    print("  top-1 accuracy per variety:")
    for key, value in result.items():
        if key.startswith("tag:"):
            print(f"    {key[4:]:<12} {value:>6.1%} of {result['n:' + key[4:]]:.0f}")
    print("  threshold  accuracy  rejection")
    for threshold in sweep:
        r = evaluate(kb, questions, threshold)
        print(f"  {threshold:>9}  {r['accuracy']:>8.1%}  {r['rejection']:>9.1%}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, action="append", help="held-out questions (repeatable)")
    args = parser.parse_args()
    files = args.file or [HELDOUT, FRESH]
    started = time.perf_counter()
    kb = KnowledgeBase.load()
    loaded = time.perf_counter() - started
    print(
        f"{len(kb)} entries loaded in {loaded * 1000:.0f} ms "
        f"(embeddings: {kb.uses_embeddings}; cached after the first load)"
    )
    for path in files:
        report(kb, path, (0.25, 0.3, 0.33, 0.35, 0.38, 0.4, 0.45))
    words = KnowledgeBase(kb.entries, synonyms=kb.synonyms, embeddings=False)
    print(f"\nwords only (TF-IDF, threshold {WORDS_ONLY_MIN_SCORE}), for comparison:")
    for path in files:
        report(words, path, ())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
