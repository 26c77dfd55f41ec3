"""NLU figures for docs/performance.md: training time, held-out accuracy, parse latency and bad input.

Prints, in one run:
  1. training time of the NLU model from scratch (``--train``; the model goes to a temporary
     directory, the project's cached model is left alone);
  2. the real-style held-out evaluation (``heldout_real.yml``: accuracy, out-of-scope rejection,
     per variety and per style, requests lists of multi-ask messages) — figures only, never an
     example: nobody working on the NLU may read that file — with the first-look figure;
  3. the written held-out evaluation (``heldout.yml``: accuracy, macro F1, per-variety accuracy,
     out-of-scope rejection, order-id exact match);
  4. parse latency through the gateway's NLU client (normaliser → Rasa → entity rules, clause
     split), sequential, over both files' utterances repeated ``--rounds`` times: p50/p95/p99,
     beside bare Rasa's figure before the embeddings;
  5. bad input (empty, 10,000 characters, only emoji, NUL, mixed scripts): time to a parse;
  6. the normaliser alone, per call.

    .venv/bin/python bench/nlu.py [--train] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nlu import NluProject, RasaNluClient
from nlu.evaluation import evaluate, load_test_examples, reference_date
from nlu.normalize import default_normaliser
from nlu.project import PROJECT_DIR
from nlu.server import EmbeddedRasaServer
from nlu.understanding import DEFAULT_CONFIDENCE_THRESHOLD, UnderstandingClient

HELDOUT = PROJECT_DIR / "heldout.yml"
HELDOUT_REAL = PROJECT_DIR / "heldout_real.yml"
BEFORE = (
    "before issue 21: 69.3 % (n-gram logistic regression; withdraw_request 0/35), OOS 91.9 %, in-scope rejected 18.3 %"
)
FIRST_LOOK = (
    "first look (e5 + n-grams + new data, before any tuning on it): 81.6 %, OOS 69.4 %, in-scope rejected 4.6 %"
)
BARE_RASA = "bare Rasa before the embeddings (docs/performance.md): p50 8.6 ms, p95 10.3 ms"
TARGETS = (
    "targets (issue 21): real-style ≥ 93 % at first look, ≥ 95 % after, every style ≥ 90 %; written held-out ≥ 97 %; "
    "OOS rejection ≥ 90 % with in-scope rejection ≤ 2 %; parse p95 ≤ 20 ms; training ≤ 300 s; bad input ≤ 100 ms"
)
BAD_INPUT = {
    "empty": "",
    "10,000 characters": ("我要退款 顺便问下发票 " * 1000)[:10000],
    "only emoji": "😂🙏😡" * 20,
    "NUL": "退\x00款\x00\x00",
    "mixed scripts": "我要refund пожалуйста 返金して 환불 ₹100 🙏 退款",
}


def percentile(values: list[float], percent: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(percent / 100 * len(ordered) + 0.5) - 1))]


async def main(train: bool, rounds: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-nlu-") as scratch:
        var_dir = Path(scratch) / "var"
        var_dir.mkdir()
        if train:
            fresh = NluProject(models_dir=Path(scratch) / "models", var_dir=var_dir)
            started = time.perf_counter()
            fresh.train(quiet=True)
            print(f"training from scratch: {time.perf_counter() - started:.0f} s (target ≤ 300 s)")
        project = NluProject(var_dir=var_dir)
        server = EmbeddedRasaServer(project, project.train())
        started = time.perf_counter()
        await server.start()
        print(f"Rasa server ready in {time.perf_counter() - started:.1f} s")
        examples = load_test_examples(HELDOUT)
        real_examples = load_test_examples(HELDOUT_REAL)
        day = reference_date(HELDOUT) or date.today()
        client = UnderstandingClient(
            RasaNluClient(server.url, server.token, timeout=30), confidence_threshold=0.0, today=lambda: day
        )
        try:
            real = await evaluate(client, real_examples, threshold=DEFAULT_CONFIDENCE_THRESHOLD)
            print(f"\nreal-style held-out: {real.total} utterances, threshold {real.threshold:g} (figures only)")
            print(f"  intent accuracy        {real.accuracy:.1%}")
            print(f"  out-of-scope rejected  {real.out_of_scope_rejection():.1%}")
            print(f"  in-scope rejected      {real.false_rejection():.1%}")
            requests = real.requests_accuracy()
            multi, count = requests["multi_ask"]
            print(f"  multi-ask: whole requests list right {multi:.1%} of {count}")
            print(f"  {BEFORE}")
            print(f"  {FIRST_LOOK}")
            for title, table in (("variety", real.per_tag()), ("style", real.per_style())):
                print(f"  per {title}:")
                for tag, (accuracy, count) in table.items():
                    print(f"    {tag:16} {accuracy:6.1%}  n={count}")

            report = await evaluate(client, examples, threshold=DEFAULT_CONFIDENCE_THRESHOLD)
            print(f"\nheld-out: {report.total} utterances, threshold {report.threshold:g}")
            print(f"  intent accuracy        {report.accuracy:.1%}")
            print(f"  macro F1               {report.macro_f1:.3f}")
            print(f"  out-of-scope rejected  {report.out_of_scope_rejection():.1%}")
            print(f"  in-scope rejected      {report.false_rejection():.1%}")
            order_accuracy, order_support = report.entity_accuracy().get("order_id", (0.0, 0))
            print(f"  order_id exact         {order_accuracy:.1%} of {order_support}")
            worst = min(report.per_tag().items(), key=lambda item: item[1][0])
            print(f"  weakest variety        {worst[0]} {worst[1][0]:.1%}")
            for tag, (accuracy, count) in report.per_tag().items():
                print(f"    {tag:16} {accuracy:6.1%}  n={count}")

            texts = [e.text for e in [*examples, *real_examples]] * rounds
            latencies = []
            for text in tqdm(texts, desc="parse latency", unit="msg", file=sys.stderr):
                started = time.perf_counter()
                await client.parse(text)
                latencies.append((time.perf_counter() - started) * 1000)
            print(f"\nparse through the gateway's NLU client, sequential, {len(texts)} calls (both files):")
            print(
                f"  p50 {percentile(latencies, 50):.1f} ms   p95 {percentile(latencies, 95):.1f} ms   "
                f"p99 {percentile(latencies, 99):.1f} ms   mean {statistics.fmean(latencies):.1f} ms"
            )
            print(f"  {BARE_RASA}")
            print("\nbad input, time to a parse (best of 3):")
            for name, text in BAD_INPUT.items():
                times = []
                for _ in range(3):
                    started = time.perf_counter()
                    result = await client.parse(text)
                    times.append((time.perf_counter() - started) * 1000)
                print(f"  {name:18} {min(times):6.1f} ms  → {result.intent.name} ({len(result.requests)} request(s))")
        finally:
            await client.close()
            await server.stop()

    normaliser = default_normaliser()
    sample = [e.text for e in examples]
    started = time.perf_counter()
    for _ in range(20):
        for text in sample:
            normaliser.normalise(text)
    per_call = (time.perf_counter() - started) / (20 * len(sample)) * 1e6
    print(f"normaliser alone: {per_call:.0f} µs per utterance")
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"load average (1, 5, 15 min): {load} on {os.cpu_count()} CPUs — latency grows with other work")
    print(TARGETS)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", action="store_true", help="also time training from scratch")
    parser.add_argument("--rounds", type=int, default=3, help="passes over the held-out texts for latency")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.train, arguments.rounds))
