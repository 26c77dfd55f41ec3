"""OCR accuracy per document type and field, on real photos and on generated documents, and the
OCR queue's latency from a photo's upload to its fields on the ticket.

    .venv/bin/python bench/ocr_documents.py                      # everything
    .venv/bin/python bench/ocr_documents.py --real DIR --split heldout --no-generated --no-latency

Real photos: listed with their source, licence, sha256 and printed contents in
``bench/data/ocr_real_photos.yml``; the files themselves are read from ``--real`` (default
``OCR_REAL_PHOTOS`` or ``../shared/data/ocr-real``). A listed file that is missing or changed is
reported and left out. ``--split heldout`` measures only the photos nobody tuned on.

Generated: waybills, VAT invoices and return slips rendered by ``media_ocr.synthetic`` with known
contents, each damaged one way (``--per-damage`` of each type per damage kind).

Latency: a real gateway stack in this process (embedded nx-27017, the OCR worker pool, the photo
intake): a ticket gets a photo as evidence, and the time until the ticket lists the photo's OCR
result is measured, ``--uploads`` times, one after another and then all at once.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import statistics
import sys
import time
import unicodedata
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from media_ocr.fields import FieldConfig  # noqa: E402
from media_ocr.model import OcrResult, fields_of  # noqa: E402
from media_ocr.pipeline import assess  # noqa: E402
from media_ocr.reader import PhotoReader, Reading  # noqa: E402
from media_ocr.validation import ReviewPolicy  # noqa: E402

MANIFEST = ROOT / "bench" / "data" / "ocr_real_photos.yml"


def default_real_dir() -> Path:
    return Path(os.environ.get("OCR_REAL_PHOTOS") or ROOT.parent / "shared" / "data" / "ocr-real")


def normalise(value: Any) -> str | None:
    if value is None:
        return None
    text = unicodedata.normalize("NFKC", str(value)).replace(" ", "").upper()
    return text or None


class Tally:
    """Right/total per (document type, field), images fully right, and wrong readings not flagged."""

    def __init__(self) -> None:
        self.fields: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
        self.types = [0, 0]
        self.images = [0, 0]
        self.unflagged_wrong = 0
        self.extra = 0
        self.reviewed = 0
        self.seconds: list[float] = []

    def add(self, expected_type: str, expected: dict[str, Any], got_type: str, got: dict[str, Any],
            flagged: set[str], seconds: float, needs_review: bool) -> list[str]:  # fmt: skip
        self.types[1] += 1
        self.types[0] += got_type == expected_type
        self.images[1] += 1
        self.seconds.append(seconds)
        self.reviewed += needs_review
        misses = []
        for name in fields_of(expected_type):
            want = normalise(expected.get(name))
            have = normalise(got.get(name)) if got_type == expected_type else None
            if want is None:
                self.extra += have is not None
                continue
            cell = self.fields[expected_type, name]
            cell[1] += 1
            if have == want:
                cell[0] += 1
            else:
                misses.append(f"{name}: {have!r} ≠ {want!r}")
                if name not in flagged:
                    self.unflagged_wrong += 1
        self.images[0] += not misses and got_type == expected_type
        return misses

    def report(self, title: str) -> None:
        right = sum(c[0] for c in self.fields.values())
        total = sum(c[1] for c in self.fields.values())
        print(f"\n## {title}")
        if not self.images[1]:
            print("no images")
            return
        print(f"images: {self.images[1]}, document type right: {self.types[0]}/{self.types[1]}, "
              f"fully right: {self.images[0]}/{self.images[1]}, sent to review: {self.reviewed}")  # fmt: skip
        print(f"fields right: {right}/{total} = {100 * right / max(1, total):.1f} %; wrong and not flagged: "
              f"{self.unflagged_wrong}; read where nothing is printed: {self.extra}")  # fmt: skip
        print(f"seconds per image: mean {statistics.fmean(self.seconds):.2f}, max {max(self.seconds):.2f}")
        print("| document | field | right | total | accuracy |")
        print("|---|---|---|---|---|")
        for (kind, name), (ok, n) in sorted(self.fields.items()):
            print(f"| {kind} | {name} | {ok} | {n} | {100 * ok / n:.0f} % |")


def judged(reading: Reading) -> OcrResult:
    """The result the service would store (review decision included); no shop to check against."""
    return asyncio.run(assess(reading, image="bench", config=FieldConfig(), policy=ReviewPolicy()))


def real_photos(directory: Path, split: str, reader: PhotoReader, verbose: bool) -> Tally:
    tally = Tally()
    listed = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))["photos"]
    for photo in listed:
        if split != "all" and photo["split"] != split:
            continue
        path = directory / photo["file"]
        if not path.is_file():
            print(f"missing: {path} (see {MANIFEST.name} for its source)")
            continue
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != photo["sha256"]:
            print(f"changed: {path} does not have the listed sha256; left out")
            continue
        reading = reader.read(data)
        result = judged(reading)
        misses = tally.add(photo["document_type"], photo["fields"], result.document_type, result.fields,
                           set(result.doubtful_fields), reading.timings.get("total", 0.0),
                           result.needs_review)  # fmt: skip
        if verbose:
            print(f"{photo['file']} [{photo['split']}] {reading.document_type}: "
                  f"{'all right' if not misses else '; '.join(misses)}")  # fmt: skip
    return tally


def generated(per_damage: int, seed: int, reader: PhotoReader, verbose: bool, severity: float) -> Tally:
    from media_ocr.synthetic import DAMAGES, document_set

    tally = Tally()
    for sample in document_set(seed=seed, per_damage=per_damage, damages=DAMAGES, severity=severity):
        reading = reader.read(sample.png())
        result = judged(reading)
        misses = tally.add(sample.document_type, sample.expected, result.document_type, result.fields,
                           set(result.doubtful_fields), reading.timings.get("total", 0.0),
                           result.needs_review)  # fmt: skip
        if verbose and misses:
            print(f"{sample.name}: {'; '.join(misses)}")
    return tally


async def latency(uploads: int) -> None:
    from bench.ocr_latency import measure

    await measure(uploads)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--real", type=Path, default=default_real_dir(), help="directory of the real photos")
    parser.add_argument("--split", choices=("heldout", "tune", "all"), default="heldout")
    parser.add_argument("--engine", default="combined")
    parser.add_argument("--per-damage", type=int, default=2, help="generated documents per type and damage kind")
    parser.add_argument("--severity", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=2027)
    parser.add_argument("--uploads", type=int, default=10)
    parser.add_argument("--no-real", action="store_true")
    parser.add_argument("--no-generated", action="store_true")
    parser.add_argument("--no-latency", action="store_true")
    parser.add_argument("-v", "--verbose", action="store_true", help="each image's misses")
    args = parser.parse_args()
    random.seed(args.seed)
    reader = PhotoReader(args.engine)
    reader.warm_up()
    if not args.no_real:
        started = time.perf_counter()
        tally = real_photos(args.real, args.split, reader, args.verbose)
        tally.report(f"real photos ({args.split}) from {args.real}, {time.perf_counter() - started:.0f} s")
    if not args.no_generated:
        tally = generated(args.per_damage, args.seed, reader, args.verbose, args.severity)
        tally.report(f"generated documents (per damage {args.per_damage}, severity {args.severity})")
    if not args.no_latency:
        asyncio.run(latency(args.uploads))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
