"""The OCR service: read a photo off the event loop, check it against the shop, keep the result.

Owns the worker pool that runs the CPU-bound :class:`~media_ocr.reader.PhotoReader` in separate
processes (the gateway's event loop keeps serving meanwhile), turning a
:class:`~media_ocr.reader.Reading` into an :class:`~media_ocr.model.OcrResult` (checks, review
decision, masked text), storing results and photos, and applying human corrections.

Must not know about channels, dialogue or HTTP.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import time
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from errors import UserError
from media_ocr.engines import make_engine
from media_ocr.fields import FieldConfig
from media_ocr.model import Correction, FieldReading, FieldValue, OcrResult, fields_of
from media_ocr.privacy import MaskingFilter, holds_personal_data, mask_text
from media_ocr.reader import PhotoReader, Reading
from media_ocr.store import ConcurrentChange, OcrResultStore
from media_ocr.validation import (
    OrderCheck,
    ReviewPolicy,
    corrected_reading,
    decide,
    document_problems,
    preset_problems,
)
from shop import OrderLookup
from store.media import MediaRejected, MediaStore

log = logging.getLogger(__name__)
log.addFilter(MaskingFilter())  # nothing read off a photo reaches the log unmasked

MAX_IMAGE_BYTES = 15 * 1024 * 1024
"""Largest photo accepted (phone cameras write 2–8 MB)."""


class OcrFailed(UserError, RuntimeError):
    """The worker could not read the image (the message says why)."""

    code = "unreadable_image"


# -- workers -------------------------------------------------------------------------------

_readers: dict[tuple[str, int], PhotoReader] = {}


def _reader(engine: str, threads: int) -> PhotoReader:
    if (engine, threads) not in _readers:
        _readers[engine, threads] = PhotoReader(make_engine(engine, threads=threads))
        _readers[engine, threads].warm_up()
    return _readers[engine, threads]


def _read_in_worker(data: bytes, engine: str, threads: int) -> Reading:
    return _reader(engine, threads).read(data)


def _warm_worker(engine: str, threads: int) -> None:
    _reader(engine, threads)


class OcrWorkers:
    """Runs readers in worker processes (or threads, for tests and small setups).

    Processes keep the CPU-heavy work and its Python-level parts away from the gateway's event
    loop; each worker loads its models once and keeps them.
    """

    def __init__(
        self, engine: str = "combined", processes: int = 1, *, threads: int = 1, use_threads: bool = False
    ) -> None:
        self.engine = engine
        self.processes = max(1, processes)
        self.threads = threads
        """Each worker's recogniser threads (one measured fastest on a shared 2-core machine)."""
        self.use_threads = use_threads
        self._pool: Executor | None = None

    def _executor(self) -> Executor:
        if self._pool is None:
            if self.use_threads:
                self._pool = ThreadPoolExecutor(self.processes, thread_name_prefix="ocr")
            else:
                # spawn, not fork: the gateway process has threads and an event loop.
                context = multiprocessing.get_context("spawn")
                self._pool = ProcessPoolExecutor(self.processes, mp_context=context)
        return self._pool

    async def warm_up(self) -> None:
        """Start the workers and load their models now instead of on the first photo."""
        loop = asyncio.get_running_loop()
        pool = self._executor()
        await asyncio.gather(
            *(loop.run_in_executor(pool, _warm_worker, self.engine, self.threads) for _ in range(self.processes))
        )

    async def read(self, data: bytes, engine: str | None = None) -> Reading:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                self._executor(), _read_in_worker, data, engine or self.engine, self.threads
            )
        except BrokenProcessPool as exc:
            # A worker died (out of memory, killed): start fresh ones for the next photo.
            self.close()
            raise OcrFailed("the OCR worker stopped unexpectedly; try again") from exc

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


# -- from reading to result ----------------------------------------------------------------


async def assess(
    reading: Reading,
    *,
    image: str,
    config: FieldConfig,
    policy: ReviewPolicy,
    check: OrderCheck | None = None,
) -> OcrResult:
    """The result for a reading: fields, confidences, the checks and the review decision.

    A return slip is checked against the shop's orders; a waybill or an invoice by its own rules
    (an invoice's amounts add up, its tax ids pass their check)."""
    fields = reading.fields
    kind = reading.document_type
    names = fields_of(kind)
    if kind == "return_slip":
        problems = preset_problems(fields, config)
        if check is not None:
            problems += await check.check(fields)
    else:
        problems = document_problems(kind, fields)
    verdict = decide(fields, problems, policy, document_type=kind)
    return OcrResult(
        image=image,
        document_type=kind,
        document_cues=reading.document_cues,
        fields={name: fields[name].value if name in fields else None for name in names},
        confidence={name: round(fields[name].confidence, 3) if name in fields else 0.0 for name in names},
        needs_review=verdict.needs_review,
        review_reasons=verdict.reasons,
        doubtful_fields=verdict.doubtful_fields,
        engine=reading.engine,
        regions=reading.regions,
        private_regions=[region for text, region in reading.line_outlines if holds_personal_data(text)],
        barcodes=[{"format": b.format, "text": b.text} for b in reading.barcodes],
        text=[mask_text(line.text) for line in reading.lines],
        order_checked=check is not None and kind == "return_slip",
        shop_problems=problems,
        seconds=round(reading.timings.get("total", 0.0), 3),
        timings={k: round(v, 4) for k, v in reading.timings.items()},
    )


class OcrService:
    """Reads photos for the gateway: store the photo, read it, check it, keep the result."""

    def __init__(
        self,
        workers: OcrWorkers,
        results: OcrResultStore,
        media: MediaStore,
        orders: OrderLookup | None,
        config: FieldConfig | None = None,
        policy: ReviewPolicy | None = None,
    ) -> None:
        self.workers = workers
        self.results = results
        self.media = media
        self.config = config or FieldConfig()
        self.policy = policy or ReviewPolicy()
        self.check = OrderCheck(orders, self.config, self.policy) if orders is not None else None

    async def ensure_indexes(self) -> None:
        await self.results.ensure_indexes()

    async def read_bytes(
        self,
        data: bytes,
        *,
        image: str,
        content_type: str | None = None,
        source: dict[str, Any] | None = None,
        engine: str | None = None,
    ) -> OcrResult:
        """Store the photo, read it in a worker and keep the checked result."""
        if len(data) > MAX_IMAGE_BYTES:
            raise OcrFailed(f"the image has {len(data)} bytes; the limit is {MAX_IMAGE_BYTES}")
        try:
            stored = await self.media.save(data, content_type or "application/octet-stream", filename=image)
        except MediaRejected as exc:
            raise OcrFailed(exc.message) from exc
        assert stored.media_id is not None  # save() always names what it stored
        return await self._read(data, image=image, media_id=stored.media_id, source=source or {}, engine=engine)

    async def read_media(
        self,
        media_id: str,
        *,
        image: str | None = None,
        source: dict[str, Any] | None = None,
        engine: str | None = None,
    ) -> OcrResult:
        """Read a photo already in the media store (a channel attachment)."""
        data = await self.media.get(media_id)
        if data is None:
            raise LookupError(f"no stored media {media_id}")
        return await self._read(data, image=image or media_id, media_id=media_id, source=source or {}, engine=engine)

    async def _read(
        self, data: bytes, *, image: str, media_id: str, source: dict[str, Any], engine: str | None
    ) -> OcrResult:
        started = time.perf_counter()
        try:
            reading = await self.workers.read(data, engine)
        except ValueError as exc:  # UnreadableImage and friends, raised in the worker
            raise OcrFailed(str(exc)) from exc
        result = await assess(reading, image=image, config=self.config, policy=self.policy, check=self.check)
        result.media_id = media_id
        result.source = source
        stored = await self.results.insert(result)
        log.info(
            "OCR %s: %s in %.2fs, review=%s %s",
            stored.id,
            media_id[:12],
            time.perf_counter() - started,
            stored.needs_review,
            stored.doubtful_fields,
        )
        return stored

    async def get(self, result_id: str) -> OcrResult | None:
        return await self.results.get(result_id)

    async def correct(self, result_id: str, field: str, value: FieldValue, who: str, why: str) -> OcrResult:
        """Apply a human's correction (recorded with who and why) and decide review again.

        Raises LookupError for an unknown result, ValueError for an unknown field or a value
        that is not valid for the field, ConcurrentChange if someone else changed it meanwhile.
        """
        found = await self.results.get_with_revision(result_id)
        if found is None:
            raise LookupError(f"no OCR result {result_id}")
        result, revision = found
        names = fields_of(result.document_type)
        if field not in names:
            raise ValueError(f"unknown field {field!r}; a {result.document_type}'s fields are {', '.join(names)}")
        reading = corrected_reading(field, value, self.config, result.document_type)
        correction = Correction(field=field, old_value=result.fields.get(field), value=reading.value, who=who, why=why)
        fields = dict(result.fields)
        fields[field] = reading.value
        confidence = dict(result.confidence)
        confidence[field] = 1.0
        verified = {c.field for c in result.corrections} | {field}
        readings = {
            name: FieldReading(fields[name], 1.0 if name in verified else confidence.get(name, 0.0), "text")
            for name in names
            if fields.get(name) is not None
        }
        if result.document_type == "return_slip":
            problems = preset_problems(readings, self.config)
            if self.check is not None and result.order_checked:
                problems += await self.check.check(readings)
        else:
            problems = document_problems(result.document_type, readings)
        # Doubts about how a field was read stand until a human has looked at that field.
        reading_doubts = [
            r for r in result.review_reasons if r not in result.shop_problems and r.split(":", 1)[0] not in verified
        ]
        verdict = decide(
            {}, [*reading_doubts, *problems], ReviewPolicy(required=(), required_by_type={}), verified,
            result.document_type,
        )  # fmt: skip
        updated = result.model_copy(
            update={
                "fields": fields,
                "confidence": confidence,
                "needs_review": verdict.needs_review,
                "review_reasons": verdict.reasons,
                "doubtful_fields": verdict.doubtful_fields,
                "shop_problems": problems,
                "corrections": [*result.corrections, correction],
            }
        )
        await self.results.replace_if_unchanged(updated, revision)
        log.info("OCR %s: %s corrected by %s", result_id, field, mask_text(who))
        return updated

    async def flag(self, result_id: str, reasons: list[str]) -> OcrResult:
        """Send a result to review for reasons found outside the photo (it does not match the
        request it was sent for); each reason starts with the field it is about."""
        for _ in range(5):
            found = await self.results.get_with_revision(result_id)
            if found is None:
                raise LookupError(f"no OCR result {result_id}")
            result, revision = found
            added = [r for r in reasons if r not in result.review_reasons]
            if not added and result.needs_review:
                return result
            names = fields_of(result.document_type)
            all_reasons = [*result.review_reasons, *added]
            doubtful = [n for n in names if any(r.startswith(f"{n}:") for r in all_reasons)]
            updated = result.model_copy(
                update={
                    "needs_review": True,
                    "review_reasons": all_reasons,
                    "doubtful_fields": list(dict.fromkeys([*result.doubtful_fields, *doubtful])),
                    "shop_problems": [*result.shop_problems, *added],
                }
            )
            try:
                await self.results.replace_if_unchanged(updated, revision)
            except ConcurrentChange:
                continue
            return updated
        raise ConcurrentChange(f"OCR result {result_id} kept changing")

    async def latest_for_media(self, media_id: str) -> OcrResult | None:
        return (await self.results.for_media([media_id])).get(media_id)

    def close(self) -> None:
        self.workers.close()
