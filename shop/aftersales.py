"""After-sales requests (售后单): every change to money or goods, with its status timeline.

A refund, return, exchange, resend, compensation or invoice is one :class:`AfterSalesRequest`.
Each step (申请 → 审核 → 支付中心受理 → 完成) is kept with its time, actor and note for agents;
customers see a shorter view (退款中 → 退款成功) from :meth:`AfterSalesRequest.customer_timeline`.
While a request is open, a second one of the same type for the same order and item is not created:
the open one is returned, so one problem told on two channels stays one request (a return of the
socks and an exchange of the shoes in one order are two requests). The customer may take a request
back (:meth:`AfterSalesService.withdraw`) or change it (:meth:`AfterSalesService.change`, e.g. a
return into an exchange) while nothing irreversible has happened to it.

Knows nothing of dialogue, channels or tickets.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field
from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from errors import Conflict

log = logging.getLogger(__name__)


class RequestType(StrEnum):
    REFUND = "refund"
    RETURN_REFUND = "return_refund"
    EXCHANGE = "exchange"
    RESEND = "resend"
    COMPENSATION = "compensation"
    PRICE_PROTECTION = "price_protection"
    INVOICE = "invoice"


GOODS_TYPES = frozenset({RequestType.RETURN_REFUND, RequestType.EXCHANGE, RequestType.RESEND})
"""Requests about what happens to one item: an item cannot be in two of these at once."""


class Step(StrEnum):
    """Agent-level statuses, in the order a request usually passes them."""

    APPLIED = "applied"
    REVIEWING = "reviewing"
    APPROVED = "approved"
    REJECTED = "rejected"
    AWAITING_RETURN = "awaiting_return"
    GOODS_RECEIVED = "goods_received"
    PAYMENT_PROCESSING = "payment_processing"
    RESENDING = "resending"
    ISSUING = "issuing"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


CLOSED_STEPS = frozenset({Step.REJECTED, Step.COMPLETED, Step.CANCELLED})

STEP_LABELS: dict[Step, dict[str, str]] = {
    Step.APPLIED: {"zh": "申请", "en": "applied"},
    Step.REVIEWING: {"zh": "审核", "en": "in review"},
    Step.APPROVED: {"zh": "审核通过", "en": "approved"},
    Step.REJECTED: {"zh": "审核驳回", "en": "rejected"},
    Step.AWAITING_RETURN: {"zh": "待退回商品", "en": "awaiting the goods"},
    Step.GOODS_RECEIVED: {"zh": "商家已收货", "en": "goods received"},
    Step.PAYMENT_PROCESSING: {"zh": "支付中心受理", "en": "with the payment centre"},
    Step.RESENDING: {"zh": "补发出库", "en": "resend dispatched"},
    Step.ISSUING: {"zh": "开票中", "en": "issuing"},
    Step.COMPLETED: {"zh": "完成", "en": "completed"},
    Step.CANCELLED: {"zh": "已撤销", "en": "cancelled"},
}

# What a customer is told at each step: fewer, plainer stages than the agent sees.
_CUSTOMER_STAGES: dict[RequestType, dict[Step, dict[str, str]]] = {
    RequestType.REFUND: {
        Step.APPLIED: {"zh": "退款审核中", "en": "refund in review"},
        Step.REVIEWING: {"zh": "退款审核中", "en": "refund in review"},
        Step.APPROVED: {"zh": "退款中", "en": "refund under way"},
        Step.PAYMENT_PROCESSING: {"zh": "退款中", "en": "refund under way"},
        Step.COMPLETED: {"zh": "退款成功", "en": "refunded"},
    },
    RequestType.RETURN_REFUND: {
        Step.APPLIED: {"zh": "退货审核中", "en": "return in review"},
        Step.REVIEWING: {"zh": "退货审核中", "en": "return in review"},
        Step.APPROVED: {"zh": "待退货", "en": "waiting for your parcel"},
        Step.AWAITING_RETURN: {"zh": "待退货", "en": "waiting for your parcel"},
        Step.GOODS_RECEIVED: {"zh": "退款中", "en": "refund under way"},
        Step.PAYMENT_PROCESSING: {"zh": "退款中", "en": "refund under way"},
        Step.COMPLETED: {"zh": "退款成功", "en": "refunded"},
    },
    RequestType.EXCHANGE: {
        Step.APPLIED: {"zh": "换货审核中", "en": "exchange in review"},
        Step.REVIEWING: {"zh": "换货审核中", "en": "exchange in review"},
        Step.APPROVED: {"zh": "待寄回商品", "en": "waiting for your parcel"},
        Step.AWAITING_RETURN: {"zh": "待寄回商品", "en": "waiting for your parcel"},
        Step.GOODS_RECEIVED: {"zh": "换新商品准备中", "en": "preparing the replacement"},
        Step.RESENDING: {"zh": "换新商品已发出", "en": "replacement sent"},
        Step.COMPLETED: {"zh": "换货完成", "en": "exchanged"},
    },
    RequestType.RESEND: {
        Step.APPLIED: {"zh": "补发审核中", "en": "resend in review"},
        Step.REVIEWING: {"zh": "补发审核中", "en": "resend in review"},
        Step.APPROVED: {"zh": "补发处理中", "en": "resend under way"},
        Step.RESENDING: {"zh": "补发已发出", "en": "resent"},
        Step.COMPLETED: {"zh": "补发完成", "en": "resend completed"},
    },
    RequestType.COMPENSATION: {
        Step.APPLIED: {"zh": "赔付审核中", "en": "claim in review"},
        Step.REVIEWING: {"zh": "赔付审核中", "en": "claim in review"},
        Step.APPROVED: {"zh": "赔付中", "en": "compensation under way"},
        Step.PAYMENT_PROCESSING: {"zh": "赔付中", "en": "compensation under way"},
        Step.COMPLETED: {"zh": "赔付完成", "en": "compensated"},
    },
    RequestType.PRICE_PROTECTION: {
        Step.APPLIED: {"zh": "价保审核中", "en": "price protection in review"},
        Step.REVIEWING: {"zh": "价保审核中", "en": "price protection in review"},
        Step.APPROVED: {"zh": "差价退还中", "en": "difference being refunded"},
        Step.PAYMENT_PROCESSING: {"zh": "差价退还中", "en": "difference being refunded"},
        Step.COMPLETED: {"zh": "差价已退还", "en": "difference refunded"},
    },
    RequestType.INVOICE: {
        Step.APPLIED: {"zh": "开票申请已提交", "en": "invoice requested"},
        Step.ISSUING: {"zh": "开票中", "en": "being issued"},
        Step.COMPLETED: {"zh": "已开票", "en": "issued"},
    },
}
_CLOSING_STAGES: dict[Step, dict[str, str]] = {
    Step.REJECTED: {"zh": "申请未通过", "en": "not approved"},
    Step.CANCELLED: {"zh": "已撤销", "en": "cancelled"},
}

TYPE_LABELS: dict[RequestType, dict[str, str]] = {
    RequestType.REFUND: {"zh": "退款", "en": "refund"},
    RequestType.RETURN_REFUND: {"zh": "退货退款", "en": "return and refund"},
    RequestType.EXCHANGE: {"zh": "换货", "en": "exchange"},
    RequestType.RESEND: {"zh": "补发", "en": "resend"},
    RequestType.COMPENSATION: {"zh": "赔付", "en": "compensation"},
    RequestType.PRICE_PROTECTION: {"zh": "价保", "en": "price protection"},
    RequestType.INVOICE: {"zh": "发票", "en": "invoice"},
}

SHIPPED_BY = "warehouse"
"""The actor of the resending step that means a parcel left (the warehouse's report, with its waybill)."""

GOODS_BACK = frozenset({RequestType.RETURN_REFUND, RequestType.EXCHANGE})
"""Requests whose goods come back to the shop (a parcel sent back or a courier pick-up)."""
WITHDRAWABLE_STEPS = frozenset({Step.APPLIED, Step.REVIEWING, Step.APPROVED, Step.AWAITING_RETURN, Step.ISSUING})
"""Steps before anything irreversible (money sent, goods received or dispatched): the customer may
take the request back or change it."""


ONCE_KEYS_KEPT = 64
"""Names of the latest changes applied with ``once`` (far more than any request receives)."""


def request_key(order_id: str, type: RequestType, items: list[dict[str, Any]] | None) -> str:
    """What makes two open requests the same: type, order and the item (all items when none is named)."""
    skus = sorted(str(i.get("sku")) for i in items or [] if i.get("sku"))
    return f"{order_id}:{type.value}:{','.join(skus) or '*'}"


def _now() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class TimelineEntry(BaseModel):
    step: Step
    at: datetime
    actor: str = Field(description="customer, system:<rule>, agent:<id>, payment_centre …")
    note: str | None = None


class CustomerStage(BaseModel):
    label: str
    at: datetime


class AfterSalesRequest(BaseModel):
    id: str
    type: RequestType
    order_id: str
    customer_id: str
    conversation_id: str | None = None
    channel: str | None = None
    status: Step
    items: list[dict[str, Any]] = Field(default_factory=list, description="sku, name, quantity, price")
    amount: float = 0.0
    reason: str | None = None
    details: dict[str, Any] = Field(default_factory=dict, description="return code, pick-up, invoice title …")
    evidence: list[str] = Field(default_factory=list, description="media ids of photos")
    readings: list[dict[str, Any]] = Field(
        default_factory=list, description="what was read off the photos: media id, result id, document type, fields"
    )
    decided_by: str | None = Field(default=None, description="system:<rule> for automatic approvals")
    ticket_id: str | None = None
    urges: int = 0
    last_urged_at: datetime | None = None
    timeline: list[TimelineEntry]
    created_at: datetime
    updated_at: datetime

    @property
    def open(self) -> bool:
        return self.status not in CLOSED_STEPS

    def type_label(self, language: str) -> str:
        labels = TYPE_LABELS[self.type]
        return labels.get(language, labels["zh"])

    def customer_timeline(self, language: str = "zh") -> list[CustomerStage]:
        """The stages a customer sees: plain labels, repeated ones folded, no actors or notes."""
        stages = _CUSTOMER_STAGES[self.type]
        out: list[CustomerStage] = []
        for entry in self.timeline:
            step = entry.step
            if step is Step.RESENDING and entry.actor != SHIPPED_BY:
                step = Step.APPROVED  # dispatch decided, nothing has left yet: not "已发出" to the customer
            labels = stages.get(step) or _CLOSING_STAGES.get(step)
            if labels is None:
                continue
            label = labels.get(language, labels["zh"])
            if not out or out[-1].label != label:
                out.append(CustomerStage(label=label, at=entry.at))
        return out

    def parcel_on_its_way(self) -> str | None:
        """The waybill of this request's parcel now travelling, if any: the resend or replacement
        the warehouse sent, or the return the courier collected."""
        if self.status is Step.RESENDING:
            return str(self.details.get("tracking_number") or "") or None
        if self.status is Step.AWAITING_RETURN:
            return str(self.details.get("return_tracking_number") or "") or None
        return None

    def customer_status(self, language: str = "zh") -> str:
        timeline = self.customer_timeline(language)
        return timeline[-1].label if timeline else self.status.value

    def agent_timeline(self, language: str = "zh") -> list[dict[str, Any]]:
        return [
            {
                "step": e.step.value,
                "label": STEP_LABELS[e.step].get(language, STEP_LABELS[e.step]["zh"]),
                "at": e.at.isoformat(),
                "actor": e.actor,
                "note": e.note,
            }
            for e in self.timeline
        ]


class RequestConflict(Conflict):
    """The request changed while we were writing; re-read and decide again."""

    code = "request_conflict"


class AfterSalesService:
    """After-sales requests in the ``aftersales_requests`` collection.

    Timelines are rewritten whole under a version check (not ``$push``) so concurrent writers
    cannot interleave half-steps, and so the documents stay plain on every MongoDB server.
    """

    def __init__(
        self,
        db: AsyncDatabase[dict[str, Any]],
        auditor: Callable[[AfterSalesRequest], Awaitable[None]] | None = None,
    ) -> None:
        self.requests = db["aftersales_requests"]
        self.counters = db["counters"]
        self.auditor = auditor
        """Told of every change (the backoffice's audit log). A change is marked ``audit_pending``
        in the same write and cleared once told, so a crash in between is caught up later."""

    async def _report(self, request: AfterSalesRequest, version: int) -> None:
        if self.auditor is None:
            return
        try:
            await self.auditor(request)
        except Exception:
            log.exception("auditing request %s failed; the sweep retries", request.id)
            return
        await self.requests.update_one({"_id": request.id, "version": version}, {"$set": {"audit_pending": False}})

    async def unreported(self) -> list[AfterSalesRequest]:
        return [AfterSalesRequest.model_validate(d) async for d in self.requests.find({"audit_pending": True})]

    async def report(self, request_id: str) -> None:
        doc = await self.requests.find_one({"_id": request_id})
        if doc is not None:
            await self._report(AfterSalesRequest.model_validate(doc), int(doc.get("version", 1)))

    async def ensure_indexes(self) -> None:
        await self.requests.create_index(
            "open_key", unique=True, partialFilterExpression={"open_key": {"$exists": True}}
        )
        await self.requests.create_index([("order_id", ASCENDING)])
        await self.requests.create_index([("customer_id", ASCENDING)])
        await self.requests.create_index([("status", ASCENDING)])

    async def _next_id(self, prefix: str, now: datetime) -> str:
        counter = await self.counters.find_one_and_update(
            {"_id": f"aftersales_{prefix}"}, {"$inc": {"value": 1}}, upsert=True, return_document=ReturnDocument.AFTER
        )
        assert counter is not None
        return f"{prefix}{now:%Y%m%d}{int(counter['value']):06d}"

    async def create(
        self,
        *,
        type: RequestType,
        order_id: str,
        customer_id: str,
        actor: str,
        conversation_id: str | None = None,
        channel: str | None = None,
        items: list[dict[str, Any]] | None = None,
        amount: float = 0.0,
        reason: str | None = None,
        details: dict[str, Any] | None = None,
        evidence: list[str] | None = None,
        note: str | None = None,
    ) -> tuple[AfterSalesRequest, bool]:
        """A new request in ``applied``; or the open one of this type for the order and item, and ``False``."""
        open_key = request_key(order_id, type, items)
        existing = await self.requests.find_one({"open_key": open_key})
        if existing is not None:
            return AfterSalesRequest.model_validate(existing), False
        now = _now()
        request = AfterSalesRequest(
            id=await self._next_id("AS", now),
            type=type,
            order_id=order_id,
            customer_id=customer_id,
            conversation_id=conversation_id,
            channel=channel,
            status=Step.APPLIED,
            items=items or [],
            amount=round(amount, 2),
            reason=reason,
            details=details or {},
            evidence=evidence or [],
            timeline=[TimelineEntry(step=Step.APPLIED, at=now, actor=actor, note=note)],
            created_at=now,
            updated_at=now,
        )
        doc = request.model_dump(mode="json")
        doc.update(_id=request.id, open_key=open_key, version=1)
        if self.auditor is not None:
            doc.update(audited=True, audit_pending=True)
        try:
            await self.requests.insert_one(doc)
        except DuplicateKeyError:
            existing = await self.requests.find_one({"open_key": open_key})
            if existing is None:
                raise
            return AfterSalesRequest.model_validate(existing), False
        await self._report(request, 1)
        return request, True

    async def advance(
        self,
        request_id: str,
        *steps: Step,
        actor: str,
        note: str | None = None,
        decided_by: str | None = None,
        details: dict[str, Any] | None = None,
        ticket_id: str | None = None,
        once: str | None = None,
    ) -> AfterSalesRequest:
        """Append steps to the timeline (one write); closing steps free the order for a new request.

        ``once`` names the change (a downstream event and its steps): asked again with the same
        name, the request is returned unchanged, so news applied twice after a crash adds nothing."""
        for _ in range(5):
            doc = await self.requests.find_one({"_id": request_id})
            if doc is None:
                raise KeyError(request_id)
            request = AfterSalesRequest.model_validate(doc)
            applied = list(doc.get("once_keys") or [])
            if once is not None and once in applied:
                return request
            if not request.open:
                raise RequestConflict(f"request {request_id} is already {request.status.value}")
            now = _now()
            timeline = [*request.timeline, *(TimelineEntry(step=s, at=now, actor=actor, note=note) for s in steps)]
            changes: dict[str, Any] = {
                "status": steps[-1].value,
                "timeline": [e.model_dump(mode="json") for e in timeline],
                "updated_at": now.isoformat(),
                "version": int(doc.get("version", 1)) + 1,
            }
            if decided_by is not None:
                changes["decided_by"] = decided_by
            if details:
                changes["details"] = {**request.details, **details}
            if ticket_id is not None:
                changes["ticket_id"] = ticket_id
            if once is not None:
                changes["once_keys"] = [*applied, once][-ONCE_KEYS_KEPT:]
            if self.auditor is not None:
                changes.update(audited=True, audit_pending=True)
            update: dict[str, Any] = {"$set": changes}
            if steps[-1] in CLOSED_STEPS:
                update["$unset"] = {"open_key": ""}
            result = await self.requests.update_one({"_id": request_id, "version": doc.get("version", 1)}, update)
            if result.matched_count == 1:
                fresh = await self.get(request_id)
                assert fresh is not None
                await self._report(fresh, int(changes["version"]))
                return fresh
        raise RequestConflict(f"request {request_id} kept changing; gave up")

    async def withdraw(self, request_id: str, *, actor: str, note: str | None = None) -> AfterSalesRequest:
        """The customer takes the request back (cancelled), while nothing irreversible has happened."""
        request = await self.get(request_id)
        if request is None:
            raise KeyError(request_id)
        if request.status not in WITHDRAWABLE_STEPS:
            raise RequestConflict(f"request {request_id} is {request.status.value}: it can no longer be withdrawn")
        return await self.advance(request_id, Step.CANCELLED, actor=actor, note=note or "客户撤回申请")

    async def change(
        self,
        request_id: str,
        *,
        actor: str,
        type: RequestType | None = None,
        details: dict[str, Any] | None = None,
        note: str,
    ) -> AfterSalesRequest:
        """The customer changes an open request in place (a return into an exchange, another size):
        one request, its timeline noting the change, its duplicate key following its new type."""
        for _ in range(5):
            doc = await self.requests.find_one({"_id": request_id})
            if doc is None:
                raise KeyError(request_id)
            request = AfterSalesRequest.model_validate(doc)
            if request.status not in WITHDRAWABLE_STEPS:
                raise RequestConflict(f"request {request_id} is {request.status.value}: it can no longer be changed")
            now = _now()
            new_type = type or request.type
            entry = TimelineEntry(step=request.status, at=now, actor=actor, note=note)
            changes: dict[str, Any] = {
                "type": new_type.value,
                "details": {**request.details, **(details or {})},
                "timeline": [e.model_dump(mode="json") for e in [*request.timeline, entry]],
                "open_key": request_key(request.order_id, new_type, request.items),
                "updated_at": now.isoformat(),
                "version": int(doc.get("version", 1)) + 1,
            }
            if new_type is RequestType.EXCHANGE:
                changes["amount"] = 0.0
            elif new_type is RequestType.RETURN_REFUND and request.type is not RequestType.RETURN_REFUND:
                changes["amount"] = sum(float(i.get("price", 0)) * int(i.get("quantity", 1)) for i in request.items)
            if self.auditor is not None:
                changes.update(audited=True, audit_pending=True)
            try:
                result = await self.requests.update_one(
                    {"_id": request_id, "version": doc.get("version", 1)}, {"$set": changes}
                )
            except DuplicateKeyError as exc:
                raise RequestConflict(f"an open {new_type.value} request for this item exists already") from exc
            if result.matched_count == 1:
                fresh = await self.get(request_id)
                assert fresh is not None
                await self._report(fresh, int(changes["version"]))
                return fresh
        raise RequestConflict(f"request {request_id} kept changing; gave up")

    async def link_ticket(self, request_id: str, ticket_id: str) -> None:
        """The ticket a person decides this request on (set once; a joined ticket keeps the first)."""
        await self.requests.update_one({"_id": request_id, "ticket_id": None}, {"$set": {"ticket_id": ticket_id}})

    async def add_evidence(self, request_id: str, media_ids: list[str]) -> None:
        doc = await self.requests.find_one({"_id": request_id})
        if doc is None:
            raise KeyError(request_id)
        merged = list(dict.fromkeys([*doc.get("evidence", []), *media_ids]))
        await self.requests.update_one(
            {"_id": request_id}, {"$set": {"evidence": merged, "updated_at": _now().isoformat()}}
        )

    async def record_reading(self, request_id: str, reading: dict[str, Any]) -> AfterSalesRequest:
        """What was read off one of the request's photos (one entry per photo, the latest kept).
        Only this method writes ``readings``, so it is set alone, beside the versioned fields."""
        doc = await self.requests.find_one({"_id": request_id})
        if doc is None:
            raise KeyError(request_id)
        kept = [r for r in doc.get("readings", []) if r.get("media_id") != reading.get("media_id")]
        await self.requests.update_one({"_id": request_id}, {"$set": {"readings": [*kept, reading]}})
        fresh = await self.get(request_id)
        assert fresh is not None
        return fresh

    async def mark_goods_on_the_way(self, request_id: str, *, actor: str, note: str) -> AfterSalesRequest:
        """A return or exchange whose return slip was checked: an approved one now waits for the
        goods (待退货), one already waiting gets the check on its timeline."""
        request = await self.get(request_id)
        if request is None:
            raise KeyError(request_id)
        step = Step.AWAITING_RETURN if request.status is Step.APPROVED else request.status
        return await self.advance(request_id, step, actor=actor, note=note)

    async def record_urge(self, request_id: str) -> AfterSalesRequest:
        await self.requests.update_one(
            {"_id": request_id}, {"$inc": {"urges": 1}, "$set": {"last_urged_at": _now().isoformat()}}
        )
        fresh = await self.get(request_id)
        if fresh is None:
            raise KeyError(request_id)
        return fresh

    async def in_status(self, *steps: Step, limit: int = 500) -> list[AfterSalesRequest]:
        """Requests now at one of ``steps`` (what the downstream dispatcher sends on)."""
        cursor = self.requests.find({"status": {"$in": [s.value for s in steps]}}).limit(limit)
        return [AfterSalesRequest.model_validate(d) async for d in cursor]

    async def get(self, request_id: str) -> AfterSalesRequest | None:
        doc = await self.requests.find_one({"_id": request_id})
        return AfterSalesRequest.model_validate(doc) if doc else None

    async def for_order(self, order_id: str) -> list[AfterSalesRequest]:
        cursor = self.requests.find({"order_id": order_id}).sort("created_at", ASCENDING)
        return [AfterSalesRequest.model_validate(d) async for d in cursor]

    async def for_customer(self, customer_id: str, *, open_only: bool = False) -> list[AfterSalesRequest]:
        cursor = self.requests.find({"customer_id": customer_id}).sort("created_at", ASCENDING)
        found = [AfterSalesRequest.model_validate(d) async for d in cursor]
        return [r for r in found if r.open] if open_only else found
