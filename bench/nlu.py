"""NLU figures for the README: training time, held-out accuracy and parse latency.

Prints, in one run:
  1. training time of the NLU model from scratch (``--train``; the model goes to a temporary
     directory, the project's cached model is left alone);
  2. the held-out evaluation (accuracy, macro F1, per-variety accuracy, out-of-scope rejection,
     order-id exact match) at the configured confidence threshold;
  3. parse latency through the gateway's NLU client (normaliser → Rasa → entity rules),
     sequential, over the held-out utterances repeated ``--rounds`` times: p50/p95/p99;
  4. the normaliser alone, per call.

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
TARGETS = "targets: accuracy ≥ 95 %, every variety ≥ 90 %, OOS rejection ≥ 90 %, order_id ≥ 98 %, p95 ≤ 15 ms"


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
            print(f"training from scratch: {time.perf_counter() - started:.0f} s (target ≤ 180 s)")
        project = NluProject(var_dir=var_dir)
        server = EmbeddedRasaServer(project, project.train())
        started = time.perf_counter()
        await server.start()
        print(f"Rasa server ready in {time.perf_counter() - started:.1f} s")
        examples = load_test_examples(HELDOUT)
        day = reference_date(HELDOUT) or date.today()
        client = UnderstandingClient(
            RasaNluClient(server.url, server.token, timeout=30), confidence_threshold=0.0, today=lambda: day
        )
        try:
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

            texts = [e.text for e in examples] * rounds
            latencies = []
            for text in tqdm(texts, desc="parse latency", unit="msg", file=sys.stderr):
                started = time.perf_counter()
                await client.parse(text)
                latencies.append((time.perf_counter() - started) * 1000)
            print(f"\nparse through the gateway's NLU client, sequential, {len(texts)} calls:")
            print(
                f"  p50 {percentile(latencies, 50):.1f} ms   p95 {percentile(latencies, 95):.1f} ms   "
                f"p99 {percentile(latencies, 99):.1f} ms   mean {statistics.fmean(latencies):.1f} ms"
            )
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
