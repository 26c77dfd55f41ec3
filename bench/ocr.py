"""Photo OCR accuracy and speed on a degraded, synthetic evaluation set.

Generates return slips, forms, header tables, shipping labels (QR code and barcode) and
invoices (seeded, so every run reads the same images), damages each one in one way (rotation,
perspective, blur, noise, low contrast, shadow, JPEG artefacts, small size, or a phone photo
with several at once; plus undamaged ones), seeds their orders into an embedded nx-27017 shop,
and reads every image with each engine, checking against the shop as the gateway does.

Prints per engine and damage type the field accuracy (six fields per image; a field not printed
on the document counts as right when it is read as absent), the wrong fields that were *not*
flagged for review (the target is none), how many images went to review, and seconds per photo.

    .venv/bin/python bench/ocr.py [--per-damage 4] [--seed 2026] [--engines combined,rapidocr,tesseract]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from media_ocr.fields import FieldConfig
from media_ocr.model import FIELD_NAMES
from media_ocr.pipeline import assess
from media_ocr.reader import PhotoReader
from media_ocr.synthetic import DAMAGES, Sample, evaluation_set
from media_ocr.validation import OrderCheck, ReviewPolicy
from shop import MongoOrderService, Order
from store.embedded import EmbeddedMongo

ENGINES = ("combined", "rapidocr", "tesseract")


@dataclass
class Tally:
    fields: int = 0
    right: int = 0
    wrong_unflagged: int = 0
    wrong: int = 0
    images: int = 0
    reviewed: int = 0
    right_but_reviewed: int = 0
    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        for name in ("fields", "right", "wrong_unflagged", "wrong", "images", "reviewed", "right_but_reviewed"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.seconds += other.seconds
        self.cpu_seconds += other.cpu_seconds


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (Tesseract runs as a child)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-damage", type=int, default=4, help="images per damage type (default 4)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--severity", type=float, default=1.0, help="damage strength (1: the degraded set)")
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--show-misses", action="store_true", help="list every wrong or flagged field")
    args = parser.parse_args()
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]

    generated = evaluation_set(args.seed, args.per_damage, severity=args.severity)
    total = args.per_damage * len(DAMAGES)
    samples = list(tqdm(generated, desc="generating", unit="image", total=total, file=sys.stderr, leave=False))
    images = [(sample, sample.png()) for sample in samples]
    print(
        f"{len(samples)} images ({args.per_damage} per damage type, seed {args.seed}, severity {args.severity}), "
        f"engines: {', '.join(engines)}"
    )

    with tempfile.TemporaryDirectory(prefix="bench-ocr-") as tmp:
        mongo = EmbeddedMongo(Path(tmp) / "mongo")
        await mongo.start()
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo.uri, tz_aware=True)
        try:
            orders = MongoOrderService(client["bench_ocr"])
            await orders.ensure_indexes()
            await orders.upsert([Order.model_validate(s.slip.order_document()) for s in samples])
            check = OrderCheck(orders)
            results = {engine: await run_engine(engine, images, check, args.show_misses) for engine in engines}
        finally:
            await client.close()
            await mongo.stop()
    report(results)
    return 0


async def run_engine(
    engine: str, images: list[tuple[Sample, bytes]], check: OrderCheck, show_misses: bool
) -> dict[str, Tally]:
    reader = PhotoReader(engine)
    started = time.perf_counter()
    reader.warm_up()
    reader.read(images[0][1])  # first call loads lazily-built parts; not a photo's cost
    print(f"{engine}: models loaded in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    config, policy = FieldConfig(), ReviewPolicy()
    by_damage: dict[str, Tally] = defaultdict(Tally)
    for sample, data in tqdm(images, desc=engine, unit="image", file=sys.stderr, leave=False):
        clock, cpu = time.perf_counter(), cpu_seconds()
        reading = reader.read(data)
        seconds, used = time.perf_counter() - clock, cpu_seconds() - cpu
        result = await assess(reading, image=sample.name, config=config, policy=policy, check=check)
        tally = Tally(images=1, seconds=[seconds], cpu_seconds=[used], reviewed=int(result.needs_review))
        expected = sample.slip.expected_fields()
        for name in FIELD_NAMES:
            got, want = result.fields.get(name), expected[name]
            tally.fields += 1
            if got == want:
                tally.right += 1
                continue
            tally.wrong += 1
            flagged = name in result.doubtful_fields
            tally.wrong_unflagged += int(not flagged)
            note = f"{sample.name} {name}: {got!r} (want {want!r}){'' if flagged else '  NOT FLAGGED'}"
            tally.misses.append(note)
            if show_misses:
                print(f"  {engine} {note}", file=sys.stderr)
        tally.right_but_reviewed = int(tally.wrong == 0 and result.needs_review)
        if show_misses and tally.right_but_reviewed:
            print(f"  {engine} {sample.name} right but reviewed: {result.review_reasons}", file=sys.stderr)
        by_damage[sample.damage].add(tally)
        by_damage[sample.damage].misses += tally.misses
    return by_damage


def report(results: dict[str, dict[str, Tally]]) -> None:
    engines = list(results)
    damages = [d for d in DAMAGES if any(d in results[e] for e in engines)]
    print("\nField accuracy by damage type (six fields per image)")
    print(f"{'damage':<14}" + "".join(f"{e:>12}" for e in engines))
    for damage in damages:
        cells = [results[e][damage] for e in engines]
        print(f"{damage:<14}" + "".join(f"{t.right / t.fields:>11.1%} " for t in cells))
    totals = {e: Tally() for e in engines}
    for engine in engines:
        for tally in results[engine].values():
            totals[engine].add(tally)
    print(f"{'all':<14}" + "".join(f"{totals[e].right / totals[e].fields:>11.1%} " for e in engines))

    print("\nPer engine")
    header = (
        f"{'engine':<10} {'fields right':>14} {'wrong':>6} {'wrong, not flagged':>19} "
        f"{'reviewed':>9} {'right but reviewed':>19} {'s/photo mean':>13} {'p95':>6} {'CPU s/photo':>12}"
    )
    print(header)
    for engine in engines:
        t = totals[engine]
        ordered = sorted(t.seconds)
        p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
        unflagged = f"{t.wrong_unflagged} ({t.wrong_unflagged / t.wrong:.0%})" if t.wrong else "0"
        print(
            f"{engine:<10} {t.right:>5}/{t.fields:<5} {t.right / t.fields:>6.1%} {t.wrong:>3} {unflagged:>19} "
            f"{t.reviewed:>4}/{t.images:<4} {t.right_but_reviewed:>19} {statistics.mean(t.seconds):>13.2f} {p95:>6.2f}"
            f" {statistics.mean(t.cpu_seconds):>12.2f}"
        )
    for engine in engines:
        unflagged = [m for tally in results[engine].values() for m in tally.misses if m.endswith("NOT FLAGGED")]
        if unflagged:
            print(f"\n{engine}: wrong and not flagged for review")
            for miss in unflagged:
                print(f"  {miss}")


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
