"""``run.py ocr``: read image files one after another and print one result per image.

Owns the command line's output: with ``--json`` exactly one JSON object per image and line
(``image``, ``fields``, ``confidence``, ``needs_review``, ``review_reasons``, ``engine``), else a
short table; a progress bar on stderr for batches; ``error: …`` on stderr for a file that
cannot be read, carrying on with the rest and failing at the end.

Must not know how the shop is reached (the caller passes an :class:`~media_ocr.validation.OrderCheck`).
"""

from __future__ import annotations

import json
import sys
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from tqdm import tqdm

from media_ocr.fields import FieldConfig
from media_ocr.model import OcrResult
from media_ocr.pipeline import MAX_IMAGE_BYTES, assess
from media_ocr.preprocess import UnreadableImage
from media_ocr.reader import PhotoReader
from media_ocr.validation import OrderCheck, ReviewPolicy


async def read_files(
    paths: Sequence[Path],
    *,
    engine: str,
    as_json: bool,
    check: OrderCheck | None = None,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """Read every file; 0 if all could be read, 1 if any could not (each one is reported)."""
    reader = PhotoReader(engine)
    config, policy = FieldConfig(), ReviewPolicy()
    failed = 0
    with tqdm(total=len(paths), file=err, unit="image", disable=len(paths) < 2, leave=False) as progress:
        for path in paths:
            try:
                data = _load(path)
                reading = reader.read(data)
            except (OSError, UnreadableImage) as exc:
                failed += 1
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                progress.write(f"error: {path}: {reason}", file=err)
                progress.update()
                continue
            result = await assess(reading, image=str(path), config=config, policy=policy, check=check)
            text = json.dumps(result.contract(), ensure_ascii=False) if as_json else _table(result)
            progress.write(text, file=out)
            out.flush()
            progress.update()
    if failed:
        print(f"error: {failed} of {len(paths)} images could not be read", file=err)
    return 1 if failed else 0


def _load(path: Path) -> bytes:
    size = path.stat().st_size
    if size > MAX_IMAGE_BYTES:
        raise UnreadableImage(f"{size} bytes; the limit is {MAX_IMAGE_BYTES}")
    return path.read_bytes()


def _pad(text: str, width: int) -> str:
    """Left-align in a terminal, where Chinese characters take two columns."""
    columns = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    return text + " " * max(0, width - columns)


def _table(result: OcrResult) -> str:
    verdict = "NEEDS REVIEW" if result.needs_review else "ok"
    lines = [f"{result.image}  [{verdict}]  engine={result.engine}"]
    for name, value in result.fields.items():
        shown = "—" if value is None else str(value)
        mark = "  ?" if name in result.doubtful_fields else ""
        lines.append(f"  {name:<12} {_pad(shown, 24)} {result.confidence.get(name, 0.0):.2f}{mark}")
    lines.extend(f"  - {reason}" for reason in result.review_reasons)
    return "\n".join(lines)
