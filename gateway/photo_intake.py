"""Photos read on arrival: customers' photos on after-sales requests and tickets go through OCR in
the worker pool, and what is read goes back onto the request and the ticket.

Owns noticing new photos — a request's or a ticket's ``evidence`` (the claim, return and invoice
flows put the photos a customer sends there), and a photo a customer sends while a return or
exchange of theirs waits for the parcel (a return slip: the slip's order number says which
request it belongs to) — and, for each photo once (a job in ``ocr_intake`` claimed by an insert,
so several gateway processes never read one photo twice): reading it, recording the fields on the
request (``AfterSalesService.record_reading``) and the ticket (``TicketDesk.attach_readings``),
and matching a return slip against its request. A slip whose order, SKU and quantity match an
open return or exchange advances it through the after-sales service; one that does not is sent to
the review queue with the reasons, never silently dropped; a slip that itself needs review is
matched again once a person has corrected it (:meth:`PhotoIntake.reconsider`).

Changes are followed through change streams (every process sees every change; the job claim
decides who works); what was missed while a stream was down is found again by a sweep over
recently updated requests and tickets. Must not know channels' wire formats or the dialogue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from backoffice.tickets import TicketDesk
from media_ocr.model import OcrResult
from media_ocr.pipeline import OcrFailed, OcrService
from shop.aftersales import GOODS_BACK, GOODS_TYPES, AfterSalesRequest, AfterSalesService, Step
from store.changes import follow_changes

log = logging.getLogger(__name__)

ACTOR = "system:ocr"
WAITING_FOR_PARCEL = (Step.APPROVED, Step.AWAITING_RETURN)
STALE_CLAIM = timedelta(minutes=5)
"""A job claimed this long ago and not done: its process died; another may take it."""


def reading_summary(result: OcrResult) -> dict[str, Any]:
    """What a request keeps of a result: enough for the agent's view, with personal data masked
    as the result has it."""
    return {
        "media_id": result.media_id,
        "result_id": result.id,
        "document_type": result.document_type,
        "fields": result.fields,
        "needs_review": result.needs_review,
        "review_reasons": result.review_reasons,
        "read_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def slip_mismatches(result: OcrResult, request: AfterSalesRequest) -> list[str]:
    """Why a return slip does not fit a request (empty: it fits): the order, an SKU of the
    request's items, at most the quantity asked for. Each reason names its field."""
    fields = result.fields
    problems: list[str] = []
    if str(fields.get("order_id") or "") != request.order_id:
        problems.append(f"order_id: the slip says {fields.get('order_id')}, request {request.id} is for "
                        f"order {request.order_id}")  # fmt: skip
    items = {str(i.get("sku", "")).upper(): i for i in request.items}
    sku = str(fields.get("sku") or "").upper()
    if items and sku not in items:
        problems.append(f"sku: the slip says {fields.get('sku')}, request {request.id} is for "
                        f"{', '.join(i for i in items)}")  # fmt: skip
    quantity = fields.get("quantity")
    asked = items.get(sku, {}).get("quantity") if items else None
    if isinstance(quantity, int) and isinstance(asked, int) and quantity > asked:
        problems.append(f"quantity: the slip returns {quantity}, request {request.id} covers {asked}")
    return problems


class PhotoIntake:
    def __init__(
        self,
        db: AsyncDatabase[dict[str, Any]],
        ocr: OcrService,
        aftersales: AfterSalesService,
        tickets: TicketDesk,
        *,
        sweep_seconds: float = 60.0,
    ) -> None:
        self.db = db
        self.jobs = db["ocr_intake"]
        self.ocr = ocr
        self.aftersales = aftersales
        self.tickets = tickets
        self.sweep_seconds = sweep_seconds
        self._tasks: list[asyncio.Task[None]] = []
        self._work: set[asyncio.Task[None]] = set()
        self._reading: dict[str, asyncio.Future[OcrResult | None]] = {}
        """Photos being read by this process: a request and its ticket share one reading."""
        self.latencies: list[float] = []
        """Seconds from noticing a photo to its fields on the request or ticket (for the bench)."""

    async def ensure_indexes(self) -> None:
        await self.jobs.create_index("state")

    # -- running ---------------------------------------------------------------------------

    async def start(self) -> None:
        opened = [asyncio.Event() for _ in range(3)]
        self._tasks = [
            asyncio.create_task(self._follow("aftersales_requests", self._on_request, opened[0]), name="intake-req"),
            asyncio.create_task(self._follow("tickets", self._on_ticket, opened[1]), name="intake-tickets"),
            asyncio.create_task(self._follow_messages(opened[2]), name="intake-messages"),
            asyncio.create_task(self._sweep_periodically(), name="intake-sweep"),
        ]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in opened)), 10)

    async def stop(self) -> None:
        for task in [*self._tasks, *self._work]:
            task.cancel()
        for task in [*self._tasks, *self._work]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks, self._work = [], set()

    async def _follow(self, collection: str, handler: Any, opened: asyncio.Event) -> None:
        async def on_change(change: Mapping[str, Any]) -> None:
            doc = change.get("fullDocument")
            if doc:
                self._spawn(handler(dict(doc)))

        async def look_again() -> None:
            self._spawn(self.sweep(timedelta(hours=1)))

        await follow_changes(self.db, collection, on_change, opened=opened, on_reopen=look_again)

    async def _follow_messages(self, opened: asyncio.Event) -> None:
        async def on_insert(change: Mapping[str, Any]) -> None:
            doc = change.get("fullDocument")
            if doc and doc.get("attachments"):
                self._spawn(self._on_message(dict(doc)))

        await follow_changes(
            self.db, "messages", on_insert, opened=opened, full_document="default",
            pipeline=[{"$match": {"operationType": "insert", "fullDocument.direction": "in"}}],
        )  # fmt: skip

    def _spawn(self, work: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(work)
        self._work.add(task)
        task.add_done_callback(self._work.discard)

    async def _sweep_periodically(self) -> None:
        while True:
            try:
                await self.sweep(timedelta(seconds=max(120.0, self.sweep_seconds * 3)))
            except Exception:
                log.exception("photo intake sweep failed")
            await asyncio.sleep(self.sweep_seconds)

    async def sweep(self, window: timedelta) -> int:
        """Requests and tickets updated within ``window``: photos not read yet are read now."""
        since = (datetime.now(UTC) - window).isoformat()
        count = 0
        async for doc in self.db["aftersales_requests"].find({"updated_at": {"$gte": since}}):
            count += await self._on_request(doc)
        async for doc in self.db["tickets"].find({"updated_at": {"$gte": since}}):
            count += await self._on_ticket(doc)
        return count

    async def idle(self) -> None:
        """Wait until the photos noticed so far are read (tests and the bench)."""
        while self._work:
            await asyncio.gather(*list(self._work), return_exceptions=True)

    # -- what a change brings ------------------------------------------------------------

    async def _on_request(self, doc: dict[str, Any]) -> int:
        done = {r.get("media_id") for r in doc.get("readings", [])}
        count = 0
        for media_id in doc.get("evidence", []):
            if media_id not in done:
                count += await self._job("request", str(doc["_id"]), str(media_id), doc.get("conversation_id"))
        return count

    async def _on_ticket(self, doc: dict[str, Any]) -> int:
        count = 0
        for media_id in doc.get("evidence", []):
            count += await self._job("ticket", str(doc["_id"]), str(media_id), None)
        return count

    async def _on_message(self, doc: dict[str, Any]) -> None:
        """A photo sent while one of the customer's returns or exchanges waits for the parcel:
        if it is a return slip for one of them, it becomes that request's evidence."""
        customer = str(doc.get("customer_id") or "")
        waiting = [r for r in await self.aftersales.for_customer(customer, open_only=True)
                   if r.type in GOODS_BACK and r.status in WAITING_FOR_PARCEL]  # fmt: skip
        if not waiting:
            return
        for index, attachment in enumerate(doc.get("attachments", [])):
            media_id = attachment.get("media_id")
            if not media_id or not str(attachment.get("content_type") or "image").startswith("image"):
                continue
            source = {"channel": doc.get("channel"), "message_id": doc.get("_id"),
                      "conversation_id": doc.get("conversation_id"), "attachment": index}  # fmt: skip
            if not await self._claim(f"message:{doc.get('_id')}:{media_id}"):
                continue
            result = await self._read(media_id, source)
            if result is None or result.document_type != "return_slip":
                await self._finish(f"message:{doc.get('_id')}:{media_id}", result)
                continue
            order_id = str(result.fields.get("order_id") or "")
            match = [r for r in waiting if r.order_id == order_id] or (waiting if len(waiting) == 1 else [])
            if match:
                # Evidence goes on through the service; the request's change brings it back here.
                await self.aftersales.add_evidence(match[0].id, [media_id])
            await self._finish(f"message:{doc.get('_id')}:{media_id}", result)

    # -- one photo of one request or ticket ------------------------------------------------

    async def _job(self, kind: str, subject: str, media_id: str, conversation_id: str | None) -> int:
        key = f"{kind}:{subject}:{media_id}"
        if not await self._claim(key):
            return 0
        started = time.perf_counter()
        source = {kind + "_id": subject, **({"conversation_id": conversation_id} if conversation_id else {})}
        result = await self.ocr.latest_for_media(media_id) or await self._read(media_id, source)
        if result is None or result.id is None:
            await self._finish(key, None)
            return 0
        if kind == "ticket":
            await self.tickets.attach_readings(subject, [result.id])
        else:
            await self._request_reading(subject, result)
        self.latencies.append(time.perf_counter() - started)
        await self._finish(key, result)
        return 1

    async def _request_reading(self, request_id: str, result: OcrResult) -> None:
        request = await self.aftersales.record_reading(request_id, reading_summary(result))
        await self._match(request, result)

    async def _match(self, request: AfterSalesRequest, result: OcrResult) -> None:
        """A return slip on an open return or exchange: advance it if the slip fits, else review."""
        if result.document_type != "return_slip" or request.type not in GOODS_TYPES or not request.open:
            return
        if request.type not in GOODS_BACK or result.id is None:
            return
        if result.needs_review:
            return  # a person looks at the reading first; reconsider() matches after the correction
        problems = slip_mismatches(result, request)
        if problems:
            flagged = await self.ocr.flag(result.id, problems)
            await self.aftersales.record_reading(request.id, reading_summary(flagged))
            log.info("return slip %s does not match request %s: sent to review", result.id, request.id)
            return
        if request.details.get("return_slip_checked") == result.id:
            return
        await self.aftersales.mark_goods_on_the_way(
            request.id, actor=ACTOR,
            note=f"退货单照片已核对：订单 {request.order_id}、商品 {result.fields.get('sku')}、"
                 f"数量 {result.fields.get('quantity')} 与申请一致（识别结果 {result.id}）",
        )  # fmt: skip
        await self.aftersales.requests.update_one(
            {"_id": request.id}, {"$set": {"details.return_slip_checked": result.id}}
        )

    async def reconsider(self, result: OcrResult) -> None:
        """After a person corrected a reading: the request it came for is told again and matched."""
        request_id = result.source.get("request_id")
        if not isinstance(request_id, str):
            return
        request = await self.aftersales.get(request_id)
        if request is None:
            return
        request = await self.aftersales.record_reading(request_id, reading_summary(result))
        await self._match(request, result)

    # -- jobs ------------------------------------------------------------------------------

    async def _claim(self, key: str) -> bool:
        now = datetime.now(UTC)
        try:
            await self.jobs.insert_one({"_id": key, "state": "reading", "claimed_at": now.isoformat()})
            return True
        except DuplicateKeyError:
            stale = (now - STALE_CLAIM).isoformat()
            taken = await self.jobs.update_one(
                {"_id": key, "state": "reading", "claimed_at": {"$lt": stale}},
                {"$set": {"claimed_at": now.isoformat()}},
            )
            return taken.modified_count == 1

    async def _finish(self, key: str, result: OcrResult | None) -> None:
        await self.jobs.update_one(
            {"_id": key},
            {"$set": {"state": "done" if result is not None else "failed", "result_id": result.id if result else None,
                      "done_at": datetime.now(UTC).isoformat()}},
        )  # fmt: skip

    async def _read(self, media_id: str, source: dict[str, Any]) -> OcrResult | None:
        pending = self._reading.get(media_id)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[OcrResult | None] = asyncio.get_running_loop().create_future()
        self._reading[media_id] = future
        try:
            result: OcrResult | None = await self.ocr.read_media(media_id, source=source)
        except (OcrFailed, LookupError) as exc:
            log.warning("photo %s could not be read: %s", media_id[:12], exc)
            result = None
        finally:
            self._reading.pop(media_id, None)
        future.set_result(result)
        return result
