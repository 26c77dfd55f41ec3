"""After-sales tickets (售后工单): what self-service cannot finish, for people to decide.

Owns the ticket record and its storage: opening a ticket (classified, routed to a queue,
prioritised with reasons, checked against the customer's and the SKU's history, decided at
once when a rule allows), joining a repeat contact to the open ticket of the same problem,
every change as a timeline entry with actor, time and reason, and the effects of each change
(audit entry, the after-sales request's steps, the customer's notice, agents' alerts, the
survey) run after the change is stored and re-run by the sweep if the process died between.

Who may make a change is ``backoffice.workflow``'s concern; when the clocks say so is
``backoffice.sla_monitor``'s. Knows nothing of dialogue wording or channel wire formats.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId
from pydantic import BaseModel, Field
from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from backoffice.audit import AuditLog
from backoffice.classify import CATEGORY_LABELS, classify
from backoffice.config import ConfigStore, SlaConfig
from backoffice.decisions import DecisionFacts, decide
from backoffice.lifecycle import (
    CUSTOMER_VISIBLE,
    DECISION_TYPES,
    OPEN,
    TYPE_LABELS,
    TicketStatus,
    TicketType,
    check_transition,
    label,
)
from backoffice.notifications import CustomerNotifier, StaffAlerts, notice
from backoffice.permissions import TicketScope
from backoffice.priority import (
    PRIORITY_RANK,
    URGENT_WORDS,
    Priority,
    PriorityAssessment,
    PriorityFactor,
    PriorityInputs,
    assess,
    level_for,
    waiting_factor,
)
from backoffice.sla import BusinessHours, SlaFacts, clocks, format_duration
from backoffice.staff import StaffDirectory
from backoffice.surveys import SurveyDesk
from shop import OrderLookup
from shop.aftersales import AfterSalesService, RequestType, Step
from store.mongo import array_indexes_work

log = logging.getLogger(__name__)

WRITE_ATTEMPTS = 8
PRODUCT_CATEGORIES = frozenset({"product_damage", "quality", "not_as_described", "food_safety"})
"""Categories that say something about the product itself (history per SKU)."""
CONVERSATION_MESSAGES_READ = 30


def _now() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def new_entry_id() -> str:
    return str(ObjectId())


class TicketEntry(BaseModel):
    """One line of the ticket's timeline: a status change, an assignment, a decision, a contact."""

    id: str | None = Field(default=None, description="audit key; None on entries older than the audit log")
    status: TicketStatus = Field(description="the status after this entry")
    from_status: TicketStatus | None = None
    kind: str = Field(default="transition", description="opened, transition, assignment, decision, contact, comment …")
    at: datetime
    actor: str = Field(description="customer, system:<rule>, staff:<id>")
    reason: str | None = None
    note: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class Pause(BaseModel):
    start: datetime
    end: datetime | None = None


class TicketSla(BaseModel):
    first_response_at: datetime | None = None
    awaiting_since: datetime | None = Field(default=None, description="the customer wrote again; nobody answered yet")
    resolved_at: datetime | None = None
    pauses: list[Pause] = Field(default_factory=list)
    escalated: bool = False
    breached: list[str] = Field(default_factory=list)


class HistoryFlag(BaseModel):
    kind: str = Field(description="abnormal_claim_pattern, possible_product_defect, repeat_issue")
    detail: str
    related: list[str] = Field(default_factory=list, description="ticket ids behind the flag")


class TicketDecision(BaseModel):
    outcome: str
    by: str
    rule: str | None = None
    reason: str | None = None
    amount: float | None = None
    explanation: list[str] = Field(default_factory=list)
    at: datetime


class TicketComment(BaseModel):
    id: str
    author: str
    text: str
    public: bool
    at: datetime
    message_id: str | None = None


class Ticket(BaseModel):
    id: str
    type: TicketType
    category: str = "other"
    classification: dict[str, Any] = Field(default_factory=dict, description="confidence and the cues")
    status: TicketStatus = TicketStatus.NEW
    queue: str = "general"
    assignee: str | None = None
    submitted_by: str | None = None
    priority: Priority
    priority_score: int = 0
    priority_factors: list[dict[str, Any]] = Field(default_factory=list)
    priority_reasons: list[str] = Field(default_factory=list)
    customer_id: str
    customer_tier: str | None = None
    order_id: str | None = None
    order_amount: float = 0.0
    amount: float = Field(default=0.0, description="the money at stake (refund, compensation)")
    skus: list[str] = Field(default_factory=list)
    item_categories: list[str] = Field(default_factory=list)
    delivered_at: datetime | None = None
    conversation_ids: list[str] = Field(default_factory=list)
    channels: list[str] = Field(default_factory=list)
    request_id: str | None = None
    summary: str
    reason: str | None = None
    evidence: list[str] = Field(default_factory=list, description="media ids of photos")
    ocr_result_ids: list[str] = Field(default_factory=list)
    contacts: int = Field(default=1, description="how many times the customer raised it")
    urges: int = 0
    earlier_complaint: bool = False
    flags: list[HistoryFlag] = Field(default_factory=list)
    decision: TicketDecision | None = None
    sla: TicketSla = Field(default_factory=TicketSla)
    comments: list[TicketComment] = Field(default_factory=list)
    survey_id: str | None = None
    timeline: list[TicketEntry]
    created_at: datetime
    updated_at: datetime

    def scope(self) -> TicketScope:
        return TicketScope(self.queue, self.assignee, self.submitted_by)

    def sla_facts(self) -> SlaFacts:
        return SlaFacts(
            created_at=self.created_at,
            first_response_at=self.sla.first_response_at,
            awaiting_since=self.sla.awaiting_since,
            resolved_at=self.sla.resolved_at,
            pauses=tuple((p.start, p.end) for p in self.sla.pauses),
        )

    @property
    def open(self) -> bool:
        return self.status in OPEN

    def flag_kinds(self) -> list[str]:
        return [f.kind for f in self.flags]


@dataclass(slots=True)
class HistoryFindings:
    flags: list[HistoryFlag]
    earlier_complaint: bool
    defect_related: list[str]
    """Open tickets of other customers about the same SKU: they get the defect flag too."""
    defect_flag: HistoryFlag | None


class TicketNotFound(KeyError):
    pass


class TicketConflict(Exception):
    """The ticket kept changing under concurrent writers; re-read and try again."""


@dataclass(frozen=True, slots=True)
class Calendar:
    config: SlaConfig
    hours: BusinessHours


Mutation = Callable[[Ticket], list[TicketEntry]]
"""Changes a copy of the ticket in place and returns the timeline entries it added; raises to refuse."""


def transition(
    ticket: Ticket,
    target: TicketStatus,
    *,
    actor: str,
    now: datetime,
    reason: str | None = None,
    note: str | None = None,
    kind: str = "transition",
    data: dict[str, Any] | None = None,
) -> TicketEntry:
    """Move the ticket (checked against the life cycle) and keep its SLA facts right."""
    check_transition(ticket.type, ticket.status, target)
    previous = ticket.status
    if previous is TicketStatus.PENDING_CUSTOMER and ticket.sla.pauses and ticket.sla.pauses[-1].end is None:
        ticket.sla.pauses[-1].end = now
    if target is TicketStatus.PENDING_CUSTOMER:
        ticket.sla.pauses.append(Pause(start=now))
    if target is TicketStatus.RESOLVED:
        ticket.sla.resolved_at = now
    if previous in (TicketStatus.RESOLVED, TicketStatus.REJECTED) and target is TicketStatus.IN_REVIEW:
        ticket.sla.resolved_at = None  # reopened: the resolution clock runs again
    if target in CUSTOMER_VISIBLE - {TicketStatus.CLAIMED, TicketStatus.ASSIGNED} and not actor.startswith("customer"):
        note_response(ticket, now)
    ticket.status = target
    entry = TicketEntry(
        id=new_entry_id(),
        status=target,
        from_status=previous,
        kind=kind,
        at=now,
        actor=actor,
        reason=reason,
        note=note,
        data=data or {},
    )
    ticket.timeline.append(entry)
    return entry


def note_response(ticket: Ticket, now: datetime) -> None:
    """The customer heard from us: first response met, next-response clock stopped."""
    if ticket.sla.first_response_at is None:
        ticket.sla.first_response_at = now
    ticket.sla.awaiting_since = None


def remark(
    ticket: Ticket, *, kind: str, actor: str, now: datetime, reason: str | None = None, **data: Any
) -> TicketEntry:
    """A timeline entry that leaves the status as it is (a contact, an escalation, a comment)."""
    entry = TicketEntry(
        id=new_entry_id(),
        status=ticket.status,
        from_status=ticket.status,
        kind=kind,
        at=now,
        actor=actor,
        reason=reason,
        data=data,
    )
    ticket.timeline.append(entry)
    return entry


def reassess(ticket: Ticket) -> PriorityAssessment:
    assessment = assess(
        PriorityInputs(
            type=ticket.type,
            amount=max(ticket.amount, ticket.order_amount),
            customer_tier=ticket.customer_tier,
            food_safety=ticket.category == "food_safety",
            urges=ticket.urges,
            urgent_words=bool(URGENT_WORDS.search(ticket.summary)),
            contacts=ticket.contacts,
            earlier_complaint=ticket.earlier_complaint,
            sla_breached=ticket.sla.escalated,
        )
    )
    ticket.priority = assessment.level
    ticket.priority_score = assessment.score
    ticket.priority_factors = [{"factor": f.factor, "points": f.points, "reason": f.reason} for f in assessment.factors]
    ticket.priority_reasons = assessment.reasons
    return assessment


class TicketDesk:
    """Tickets in the ``tickets`` collection, and everything that follows from changing one."""

    def __init__(
        self,
        db: AsyncDatabase[dict[str, Any]],
        *,
        config: ConfigStore | None = None,
        orders: OrderLookup | None = None,
        aftersales: AfterSalesService | None = None,
        audit: AuditLog | None = None,
        staff: StaffDirectory | None = None,
        alerts: StaffAlerts | None = None,
        notifier: CustomerNotifier | None = None,
        surveys: SurveyDesk | None = None,
        conversation_words: Callable[[str], Awaitable[tuple[list[str], str]]] | None = None,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.db = db
        self.tickets = db["tickets"]
        self.counters = db["counters"]
        self.config = config or ConfigStore(db)
        self.orders = orders
        self.aftersales = aftersales
        self.audit = audit or AuditLog(db)
        self.staff = staff or StaffDirectory(db)
        self.alerts = alerts or StaffAlerts(db)
        self.notifier = notifier
        self.surveys = surveys
        self.conversation_words = conversation_words
        """The intents and customer text of a conversation, for classification."""
        self.clock = clock
        self._calendar: tuple[int, Calendar] | None = None

    async def ensure_indexes(self) -> None:
        await self.tickets.create_index(
            "open_key", unique=True, partialFilterExpression={"open_key": {"$exists": True}}
        )
        await self.tickets.create_index([("customer_id", ASCENDING)])
        await self.tickets.create_index([("status", ASCENDING)])
        await self.tickets.create_index([("queue", ASCENDING)])
        await self.tickets.create_index([("assignee", ASCENDING)])
        if await array_indexes_work(self.db):
            await self.tickets.create_index([("skus", ASCENDING)])
            await self.tickets.create_index([("conversation_ids", ASCENDING)])
        await self.tickets.create_index([("effects_pending", ASCENDING)])
        await self.audit.ensure_indexes()
        await self.staff.ensure_indexes()
        await self.alerts.ensure_indexes()
        if self.surveys is not None:
            await self.surveys.ensure_indexes()

    async def calendar(self) -> Calendar:
        sla = await self.config.sla()
        key = id(sla)
        if self._calendar is None or self._calendar[0] != key:
            self._calendar = (key, Calendar(sla, sla.business_hours.calendar()))
        return self._calendar[1]

    # -- opening ------------------------------------------------------------------------

    async def open(
        self,
        *,
        type: TicketType | None,
        customer_id: str,
        summary: str,
        conversation_id: str | None,
        channel: str | None,
        order_id: str | None = None,
        request_id: str | None = None,
        reason: str | None = None,
        evidence: list[str] | None = None,
        amount: float = 0.0,
        food_safety: bool = False,
        actor: str = "system:self_service",
        text: str | None = None,
        intents: Sequence[str] | None = None,
        submitted_by: str | None = None,
        ocr_result_ids: list[str] | None = None,
        quiet: bool = False,
    ) -> tuple[Ticket, bool]:
        """A new ticket, or the customer's open one for the same order and type (and ``False``).

        ``type`` None lets the classifier choose from ``intents`` and the words. ``quiet`` means
        the caller tells the customer what happened (the dialogue does, in the same turn).
        """
        conversation_intents: list[str] = []
        conversation_text = ""
        if conversation_id and self.conversation_words is not None and (intents is None or not text):
            conversation_intents, conversation_text = await self.conversation_words(conversation_id)
        words = " ".join(w for w in (summary, text or conversation_text) if w)
        classification = classify(
            text=words,
            intents=list(intents) if intents is not None else conversation_intents,
            declared_type=type,
            reason="food_safety" if food_safety else reason,
        )
        ticket_type = classification.type
        open_key = f"{customer_id}:{order_id or '-'}:{ticket_type.value}"
        existing = await self.tickets.find_one({"open_key": open_key})
        if existing is not None:
            joined = await self._join(existing["_id"], conversation_id, channel, evidence or [], summary)
            return joined, False

        now = self.clock()
        order = await self.orders.get(order_id) if self.orders is not None and order_id else None
        request = await self.aftersales.get(request_id) if self.aftersales is not None and request_id else None
        skus = [str(i["sku"]) for i in request.items if i.get("sku")] if request and request.items else []
        if not skus and order is not None:
            skus = [i.sku for i in order.items]
        claim_amount = request.amount if request is not None and request.amount > 0 else amount
        tickets_config = await self.config.tickets()
        queue = tickets_config.queue_for(ticket_type, classification.category)
        history = await self._history(customer_id, skus, classification.category, ticket_type, now)
        counter = await self.counters.find_one_and_update(
            {"_id": "ticket"}, {"$inc": {"value": 1}}, upsert=True, return_document=ReturnDocument.AFTER
        )
        assert counter is not None
        ticket = Ticket(
            id=f"T{now:%Y%m%d}{int(counter['value']):06d}",
            type=ticket_type,
            category=classification.category,
            classification={"confidence": classification.confidence, "cues": list(classification.cues)},
            queue=queue,
            submitted_by=submitted_by,
            priority=Priority.NORMAL,
            customer_id=customer_id,
            customer_tier=order.customer.tier if order is not None else None,
            order_id=order_id,
            order_amount=order.amount if order is not None else 0.0,
            amount=round(claim_amount, 2),
            skus=skus,
            item_categories=sorted({i.category for i in order.items if i.category}) if order is not None else [],
            delivered_at=order.delivered_at if order is not None else None,
            conversation_ids=[conversation_id] if conversation_id else [],
            channels=[channel] if channel else [],
            request_id=request_id,
            summary=summary[:2000],
            reason=reason,
            evidence=list(dict.fromkeys(evidence or [])),
            ocr_result_ids=ocr_result_ids or [],
            earlier_complaint=history.earlier_complaint,
            flags=history.flags,
            timeline=[],
            created_at=now,
            updated_at=now,
        )
        reassess(ticket)
        opened = TicketEntry(
            id=new_entry_id(),
            status=TicketStatus.NEW,
            kind="opened",
            at=now,
            actor=actor,
            note=summary[:500],
            data={"queue": queue, "category": classification.category, **({"quiet": True} if quiet else {})},
        )
        ticket.timeline.append(opened)
        doc = _document(ticket)
        doc.update(_id=ticket.id, open_key=open_key, version=1, effects_pending=True, effects_done=0)
        try:
            await self.tickets.insert_one(doc)
        except DuplicateKeyError:
            existing = await self.tickets.find_one({"open_key": open_key})
            if existing is None:
                raise
            return await self._join(existing["_id"], conversation_id, channel, evidence or [], summary), False
        if request is not None and self.aftersales is not None:
            await self.aftersales.link_ticket(request.id, ticket.id)
        await self.run_effects(ticket.id)
        for related in history.defect_related:
            await self._flag_related(related, history.defect_flag, ticket.id)
        ticket = await self._decide_or_route(ticket.id, quiet=quiet)
        return ticket, True

    async def _decide_or_route(self, ticket_id: str, *, quiet: bool) -> Ticket:
        """An automatic decision if a rule allows one, else an agent if the queue auto-assigns."""
        ticket = await self.require(ticket_id)
        rules = await self.config.rules()
        now = self.clock()
        days = (now - ticket.delivered_at).total_seconds() / 86400 if ticket.delivered_at else None
        history_window = (await self.config.tickets()).history.window_days
        claims = await self._claims_in_window(ticket.customer_id, now, history_window, exclude=ticket.id)
        decision = decide(
            rules,
            DecisionFacts(
                type=ticket.type,
                category=ticket.category,
                reason=ticket.reason,
                amount=ticket.amount,
                days_since_delivery=days,
                customer_tier=ticket.customer_tier,
                item_categories=ticket.item_categories,
                claims_in_window=claims,
                has_evidence=bool(ticket.evidence or ticket.ocr_result_ids),
                flags=ticket.flag_kinds(),
            ),
        )
        if decision is not None and ticket.type in DECISION_TYPES:
            target = TicketStatus.APPROVED if decision.outcome == "approve" else TicketStatus.REJECTED
            actor = f"system:{decision.rule}"

            def decide_now(t: Ticket) -> list[TicketEntry]:
                if t.status is not TicketStatus.NEW:
                    return []
                return self.record_decision(
                    t, target, actor=actor, now=self.clock(), reason=decision.rule, rule=decision.rule,
                    explanation=list(decision.explanation), quiet=quiet,
                )  # fmt: skip

            return await self.apply(ticket_id, decide_now)
        from backoffice.assignment import auto_assign  # the router needs the desk; imported late

        return await auto_assign(self, ticket_id) or ticket

    def record_decision(
        self,
        ticket: Ticket,
        target: TicketStatus,
        *,
        actor: str,
        now: datetime,
        reason: str | None,
        rule: str | None = None,
        explanation: list[str] | None = None,
        amount: float | None = None,
        quiet: bool = False,
    ) -> list[TicketEntry]:
        """Approve or reject, recorded as a decision; an approved money/goods request then moves
        on to processing in the same change."""
        extra = {"quiet": True} if quiet else {}
        if amount is not None:
            ticket.amount = round(amount, 2)
        ticket.decision = TicketDecision(
            outcome=target.value, by=actor, rule=rule, reason=reason, amount=ticket.amount,
            explanation=explanation or [], at=now,
        )  # fmt: skip
        entries = [
            transition(
                ticket, target, actor=actor, now=now, reason=reason, kind="decision",
                data={"rule": rule, "amount": ticket.amount, "explanation": explanation or [], **extra},
            )
        ]  # fmt: skip
        if target is TicketStatus.APPROVED and ticket.request_id and ticket.type in DECISION_TYPES:
            entries.append(
                transition(
                    ticket, TicketStatus.PROCESSING, actor="system:after_sales", now=now,
                    reason="goods and money flows started", data={"quiet": True},
                )
            )  # fmt: skip
        return entries

    # -- repeat contacts ------------------------------------------------------------------

    async def _join(
        self, ticket_id: str, conversation_id: str | None, channel: str | None, evidence: list[str], summary: str
    ) -> Ticket:
        """The same problem raised again: one more contact, the conversation and channel added,
        priority up; a resolved ticket opens again."""

        def join(ticket: Ticket) -> list[TicketEntry]:
            now = self.clock()
            if conversation_id:
                ticket.conversation_ids = list(dict.fromkeys([*ticket.conversation_ids, conversation_id]))
            if channel:
                ticket.channels = list(dict.fromkeys([*ticket.channels, channel]))
            ticket.evidence = list(dict.fromkeys([*ticket.evidence, *evidence]))
            ticket.contacts += 1
            if ticket.sla.awaiting_since is None and ticket.sla.first_response_at is not None:
                ticket.sla.awaiting_since = now
            reassess(ticket)
            entries = [remark(ticket, kind="contact", actor="customer", now=now, reason="raised again", note=summary)]
            entries[0].note = summary[:500]
            if ticket.status is TicketStatus.RESOLVED:
                entries.append(transition(ticket, TicketStatus.IN_REVIEW, actor="customer", now=now,
                                          reason="the customer raised it again"))  # fmt: skip
            elif ticket.status is TicketStatus.PENDING_CUSTOMER:
                entries.append(transition(ticket, TicketStatus.IN_REVIEW, actor="customer", now=now,
                                          reason="the customer answered"))  # fmt: skip
            return entries

        return await self.apply(ticket_id, join)

    async def record_urge(self, ticket_id: str) -> Ticket | None:
        """The customer chased it: priority up (at least high), the next-response clock runs."""
        if await self.get(ticket_id) is None:
            return None

        def urge(ticket: Ticket) -> list[TicketEntry]:
            now = self.clock()
            ticket.urges += 1
            ticket.contacts += 1
            if ticket.sla.first_response_at is not None and ticket.sla.awaiting_since is None:
                ticket.sla.awaiting_since = now
            reassess(ticket)
            return [remark(ticket, kind="contact", actor="customer", now=now, reason="customer urged")]

        return await self.apply(ticket_id, urge)

    async def customer_replied(self, conversation_id: str, media_ids: Sequence[str] = ()) -> list[Ticket]:
        """A message on a conversation whose ticket waits for the customer: the ticket goes back
        to review (photos sent are added as evidence)."""
        resumed: list[Ticket] = []
        cursor = self.tickets.find({"conversation_ids": conversation_id, "status": TicketStatus.PENDING_CUSTOMER.value})
        async for doc in cursor:

            def resume(ticket: Ticket) -> list[TicketEntry]:
                if ticket.status is not TicketStatus.PENDING_CUSTOMER:
                    return []
                now = self.clock()
                ticket.evidence = list(dict.fromkeys([*ticket.evidence, *media_ids]))
                ticket.sla.awaiting_since = now
                entry = transition(
                    ticket, TicketStatus.IN_REVIEW, actor="customer", now=now, reason="the customer answered",
                    data={"media": list(media_ids)},
                )  # fmt: skip
                return [entry]

            resumed.append(await self.apply(str(doc["_id"]), resume))
        return resumed

    # -- history --------------------------------------------------------------------------

    async def _history(
        self, customer_id: str, skus: list[str], category: str, ticket_type: TicketType, now: datetime
    ) -> HistoryFindings:
        rules = (await self.config.tickets()).history
        since = now - timedelta(days=rules.window_days)
        mine = [t async for t in self._tickets({"customer_id": customer_id}) if t.created_at >= since]
        flags: list[HistoryFlag] = []
        claims = [t for t in mine if t.type in DECISION_TYPES]
        if ticket_type in DECISION_TYPES and len(claims) + 1 >= rules.customer_claims:
            flags.append(
                HistoryFlag(
                    kind="abnormal_claim_pattern",
                    detail=f"该客户 {rules.window_days} 天内第 {len(claims) + 1} 次退款/赔付类申请 "
                    f"({len(claims) + 1} money/goods claims in {rules.window_days} days)",
                    related=[t.id for t in claims],
                )
            )
        same = [t for t in mine if t.category == category and category != "other"]
        if same:
            flags.append(
                HistoryFlag(
                    kind="repeat_issue",
                    detail=f"该客户此前反映过同类问题：{CATEGORY_LABELS.get(category, {}).get('zh', category)} "
                    f"({len(same)} earlier)",
                    related=[t.id for t in same],
                )
            )
        defect_related: list[str] = []
        defect_flag: HistoryFlag | None = None
        if category in PRODUCT_CATEGORIES:
            sku_since = now - timedelta(days=rules.sku_window_days)
            for sku in skus:
                others = [
                    t
                    async for t in self._tickets({"skus": sku})
                    if t.created_at >= sku_since and t.category in PRODUCT_CATEGORIES
                ]
                customers = {t.customer_id for t in others} | {customer_id}
                if len(customers) >= rules.sku_customers:
                    defect_flag = HistoryFlag(
                        kind="possible_product_defect",
                        detail=f"商品 {sku} 近 {rules.sku_window_days} 天有 {len(customers)} 位客户反映商品问题 "
                        f"({len(customers)} customers reported product problems with {sku})",
                        related=[t.id for t in others],
                    )
                    flags.append(defect_flag)
                    defect_related = [t.id for t in others if t.open]
                    break
        earlier_complaint = any(t.type is TicketType.COMPLAINT for t in mine)
        return HistoryFindings(flags, earlier_complaint, defect_related, defect_flag)

    async def _flag_related(self, ticket_id: str, flag: HistoryFlag | None, new_ticket_id: str) -> None:
        if flag is None:
            return

        def add_flag(ticket: Ticket) -> list[TicketEntry]:
            kept = [f for f in ticket.flags if f.kind != flag.kind]
            related = sorted({*flag.related, new_ticket_id} - {ticket.id})
            ticket.flags = [*kept, flag.model_copy(update={"related": related})]
            return []

        try:
            await self.apply(ticket_id, add_flag)
        except TicketConflict:
            log.warning("could not flag ticket %s as a possible product defect", ticket_id)

    async def _claims_in_window(self, customer_id: str, now: datetime, days: int, *, exclude: str) -> int:
        since = now - timedelta(days=days)
        return len(
            [
                t
                async for t in self._tickets({"customer_id": customer_id})
                if t.id != exclude and t.type in DECISION_TYPES and t.created_at >= since
            ]
        )

    # -- reading --------------------------------------------------------------------------

    async def _tickets(self, query: dict[str, Any]) -> Any:
        async for doc in self.tickets.find(query):
            yield _ticket(doc)

    async def get(self, ticket_id: str) -> Ticket | None:
        doc = await self.tickets.find_one({"_id": ticket_id})
        return _ticket(doc) if doc else None

    async def require(self, ticket_id: str) -> Ticket:
        ticket = await self.get(ticket_id)
        if ticket is None:
            raise TicketNotFound(ticket_id)
        return ticket

    async def for_customer(self, customer_id: str) -> list[Ticket]:
        found = [t async for t in self._tickets({"customer_id": customer_id})]
        return sorted(found, key=lambda t: t.created_at)

    async def find(self, query: dict[str, Any], *, limit: int = 500) -> list[Ticket]:
        return [_ticket(d) async for d in self.tickets.find(query).limit(limit)]

    async def open_tickets(self, **query: Any) -> list[Ticket]:
        statuses = [s.value for s in OPEN]
        return await self.find({"status": {"$in": statuses}, **query}, limit=5000)

    async def effective_priority(self, ticket: Ticket, now: datetime | None = None) -> PriorityAssessment:
        """The stored priority plus points for time waited in business hours (old tickets rise)."""
        now = now or self.clock()
        calendar = await self.calendar()
        factors = [_factor(f) for f in ticket.priority_factors]
        if ticket.open:
            waited = calendar.hours.seconds_between(ticket.created_at, now) / 3600
            extra = waiting_factor(waited)
            if extra is not None:
                factors.append(extra)
        score = sum(f.points for f in factors)
        level = level_for(score)
        if PRIORITY_RANK[ticket.priority] > PRIORITY_RANK[level]:
            level = ticket.priority  # escalation may have raised it above its score
        return PriorityAssessment(level, score, tuple(factors))

    async def queue_order(self, tickets: list[Ticket]) -> list[tuple[Ticket, PriorityAssessment]]:
        """Most urgent first, then oldest first."""
        now = self.clock()
        ranked = [(t, await self.effective_priority(t, now)) for t in tickets]
        ranked.sort(key=lambda pair: (-PRIORITY_RANK[pair[1].level], -pair[1].score, pair[0].created_at))
        return ranked

    async def view(self, ticket: Ticket, language: str = "zh", *, full: bool = True) -> dict[str, Any]:
        """The ticket as agents see it: labels, age, SLA clocks, the explained priority."""
        now = self.clock()
        calendar = await self.calendar()
        tickets_config = await self.config.tickets()
        priority = await self.effective_priority(ticket, now)
        targets = calendar.config.targets_for(ticket.type, ticket.priority)
        sla_clocks = clocks(ticket.sla_facts(), targets, calendar.hours, now, calendar.config.warn_at)
        age = (now - ticket.created_at).total_seconds()
        body = ticket.model_dump(mode="json", exclude=set() if full else {"timeline", "comments", "classification"})
        body.update(
            type_label=TYPE_LABELS[ticket.type].get(language, TYPE_LABELS[ticket.type]["zh"]),
            category_label=CATEGORY_LABELS.get(ticket.category, CATEGORY_LABELS["other"]).get(language),
            status_label=label(ticket.status, language),
            queue_label=tickets_config.queue_label(ticket.queue, language),
            applied_at=ticket.created_at.isoformat(),
            age={"seconds": int(age), "text": format_duration(age, language)},
            effective_priority={
                "level": priority.level.value,
                "score": priority.score,
                "factors": [{"factor": f.factor, "points": f.points, "reason": f.reason} for f in priority.factors],
            },
            sla_clocks=[c.as_dict() for c in sla_clocks],
        )
        if full:
            body["customer_timeline"] = customer_timeline(ticket, language)
        return body

    # -- writing --------------------------------------------------------------------------

    async def apply(self, ticket_id: str, mutation: Mutation) -> Ticket:
        """Change a ticket under its version (concurrent writers retry on the fresh copy), then
        run the effects of the entries it added."""
        for _ in range(WRITE_ATTEMPTS):
            doc = await self.tickets.find_one({"_id": ticket_id})
            if doc is None:
                raise TicketNotFound(ticket_id)
            ticket = _ticket(doc)
            version = int(doc.get("version", 1))
            entries = mutation(ticket)
            ticket.updated_at = self.clock()
            changes = _document(ticket)
            changes["version"] = version + 1
            if entries:
                changes["effects_pending"] = True
            update: dict[str, Any] = {"$set": changes}
            if ticket.status is TicketStatus.CLOSED:
                update["$unset"] = {"open_key": ""}
            result = await self.tickets.update_one({"_id": ticket_id, "version": version}, update)
            if result.matched_count == 1:
                if entries:
                    await self.run_effects(ticket_id)
                fresh = await self.get(ticket_id)
                assert fresh is not None
                return fresh
        raise TicketConflict(f"ticket {ticket_id} kept changing; try again")

    async def run_effects(self, ticket_id: str) -> None:
        """Audit, request steps, customer notices, alerts and surveys for entries not yet done.
        Each effect is keyed, so running it twice (after a crash) does it once."""
        doc = await self.tickets.find_one({"_id": ticket_id})
        if doc is None:
            return
        ticket = _ticket(doc)
        done = int(doc.get("effects_done", 0))
        version = int(doc.get("version", 1))
        raw = doc.get("timeline", [])
        for index in range(done, len(ticket.timeline)):
            entry = ticket.timeline[index]
            if entry.id is None:
                continue
            await self.audit.record(
                entry_id=entry.id,
                kind=f"ticket_{entry.kind}",
                subject=f"ticket:{ticket.id}",
                actor=entry.actor,
                at=str(raw[index]["at"]),
                data={
                    "from": entry.from_status.value if entry.from_status else None,
                    "to": entry.status.value,
                    "reason": entry.reason,
                    "note": entry.note,
                    "type": ticket.type.value,
                    "order_id": ticket.order_id,
                    "amount": ticket.amount if entry.kind == "decision" else None,
                    **{k: v for k, v in entry.data.items() if k != "quiet"},
                },
            )
            await self._sync_request(ticket, entry)
            await self._notify_customer(ticket, entry, index)
            await self._alert_staff(ticket, entry)
            if entry.status is TicketStatus.CLOSED and entry.from_status is not TicketStatus.NEW:
                await self._send_survey(ticket)
        await self.tickets.update_one(
            {"_id": ticket_id, "effects_done": done}, {"$set": {"effects_done": len(ticket.timeline)}}
        )
        await self.tickets.update_one({"_id": ticket_id, "version": version}, {"$set": {"effects_pending": False}})

    async def pending_effects(self) -> list[str]:
        return [str(d["_id"]) async for d in self.tickets.find({"effects_pending": True}, {"_id": 1})]

    async def _sync_request(self, ticket: Ticket, entry: TicketEntry) -> None:
        """The linked after-sales request follows the ticket's decisions, so the customer's
        timeline (退款中 → 退款成功) tells the truth."""
        if self.aftersales is None or not ticket.request_id or entry.kind not in ("decision", "transition"):
            return
        request = await self.aftersales.get(ticket.request_id)
        if request is None or not request.open:
            return
        actor = entry.actor
        if entry.status is TicketStatus.APPROVED and entry.kind == "decision":
            if request.status in (Step.APPLIED, Step.REVIEWING):
                details = {"return_code": "RT" + request.id[2:]} if request.type in _GOODS_BACK else None
                request = await self.aftersales.advance(
                    request.id, Step.APPROVED, actor=actor, decided_by=actor, note=entry.reason, details=details
                )
            if request.status is Step.APPROVED and (follow := _AFTER_APPROVAL.get(request.type)) is not None:
                step, by = follow
                await self.aftersales.advance(request.id, step, actor=by)
        elif entry.status is TicketStatus.REJECTED and request.status in (Step.APPLIED, Step.REVIEWING):
            await self.aftersales.advance(request.id, Step.REJECTED, actor=actor, decided_by=actor, note=entry.reason)
        elif entry.status is TicketStatus.RESOLVED:
            await self.aftersales.advance(request.id, Step.COMPLETED, actor=actor, note=entry.note or entry.reason)

    async def _notify_customer(self, ticket: Ticket, entry: TicketEntry, index: int) -> None:
        if self.notifier is None or not ticket.conversation_ids or entry.data.get("quiet") or not entry.id:
            return
        key: str | None = None
        values: dict[str, Any] = {"ticket_id": ticket.id, "note": entry.note or entry.reason or ""}
        status = entry.status
        first_acceptance = not any(
            e.status in (TicketStatus.CLAIMED, TicketStatus.ASSIGNED) for e in ticket.timeline[:index]
        )
        if entry.kind == "comment" and entry.data.get("public"):
            text = str(entry.data.get("text", ""))
            await self.notifier.send(
                ticket.conversation_ids[-1], text, key=f"ticket:{ticket.id}:{entry.id}", author=entry.actor
            )
            return
        if entry.kind not in ("transition", "decision", "assignment") or entry.from_status is status:
            return
        if status in (TicketStatus.CLAIMED, TicketStatus.ASSIGNED) and first_acceptance:
            key = "accepted"
        elif status is TicketStatus.PENDING_CUSTOMER:
            key = "pending_customer"
        elif status is TicketStatus.APPROVED:
            key = "approved"
        elif status is TicketStatus.REJECTED:
            key = "rejected"
        elif status is TicketStatus.RESOLVED:
            key = "resolved"
        elif status is TicketStatus.IN_REVIEW and entry.from_status in (TicketStatus.RESOLVED, TicketStatus.REJECTED):
            key = "reopened"
        if key is None:
            return
        return_code = await self._return_code(ticket)
        rule_labels = await self._rule_labels(str(entry.data.get("rule") or "")) if entry.kind == "decision" else {}

        def text_in(language: str) -> str:
            rule = rule_labels.get(language) or rule_labels.get("zh")
            return notice_text(ticket, key, language, return_code=return_code, rule=rule, **values)

        await self.notifier.send(ticket.conversation_ids[-1], text_in, key=f"ticket:{ticket.id}:{entry.id}")

    async def _return_code(self, ticket: Ticket) -> str:
        request = await self.aftersales.get(ticket.request_id) if self.aftersales and ticket.request_id else None
        return str(request.details.get("return_code") or "-") if request else "-"

    async def _rule_labels(self, rule_id: str) -> dict[str, str]:
        rule = next((r for r in (await self.config.rules()).rules if r.id == rule_id), None)
        return dict(rule.description) if rule else {}

    async def decision_notice(self, ticket: Ticket, language: str) -> str | None:
        """What the customer is told of an automatic decision, for a caller that tells them itself."""
        if ticket.decision is None:
            return None
        key = "approved" if ticket.decision.outcome == TicketStatus.APPROVED.value else "rejected"
        labels = await self._rule_labels(ticket.decision.rule or "")
        return notice_text(
            ticket, key, language, return_code=await self._return_code(ticket), ticket_id=ticket.id,
            note=ticket.decision.reason or "", rule=labels.get(language) or labels.get("zh"),
        )  # fmt: skip

    async def _alert_staff(self, ticket: Ticket, entry: TicketEntry) -> None:
        type_zh, type_en = TYPE_LABELS[ticket.type]["zh"], TYPE_LABELS[ticket.type]["en"]
        key = f"{entry.kind}:{entry.id}"
        if entry.kind == "opened":
            await self.alerts.raise_alert(
                key, kind="new_ticket", ticket_id=ticket.id, audience=[f"queue:{ticket.queue}"],
                text={"zh": f"新工单 {ticket.id}（{type_zh}，{ticket.priority.value}）：{ticket.summary[:80]}",
                      "en": f"New ticket {ticket.id} ({type_en}, {ticket.priority.value}): {ticket.summary[:80]}"},
            )  # fmt: skip
        elif entry.status is TicketStatus.ASSIGNED and ticket.assignee and entry.kind == "assignment":
            await self.alerts.raise_alert(
                key, kind="assigned", ticket_id=ticket.id, audience=[f"staff:{entry.data.get('assignee')}"],
                text={"zh": f"工单 {ticket.id}（{type_zh}）已分配给您",
                      "en": f"Ticket {ticket.id} ({type_en}) is yours"},
            )  # fmt: skip
        elif entry.kind == "escalation":
            await self.alerts.raise_alert(
                key, kind="escalated", ticket_id=ticket.id,
                audience=["role:dispatcher", *([f"staff:{ticket.assignee}"] if ticket.assignee else [])],
                text={"zh": f"工单 {ticket.id} 已超时升级：{entry.reason}",
                      "en": f"Ticket {ticket.id} escalated: {entry.reason}"},
            )  # fmt: skip
        elif entry.kind in ("contact", "transition") and entry.actor == "customer":
            audience = [f"staff:{ticket.assignee}"] if ticket.assignee else [f"queue:{ticket.queue}"]
            await self.alerts.raise_alert(
                key, kind="customer_replied", ticket_id=ticket.id, audience=audience,
                text={"zh": f"客户更新了工单 {ticket.id}：{entry.reason}",
                      "en": f"The customer updated ticket {ticket.id}: {entry.reason}"},
            )  # fmt: skip

    async def _send_survey(self, ticket: Ticket) -> None:
        if self.surveys is None or not ticket.conversation_ids:
            return
        survey = await self.surveys.send(
            ticket_id=ticket.id,
            customer_id=ticket.customer_id,
            conversation_id=ticket.conversation_ids[-1],
            agent=ticket.assignee,
            ticket_type=ticket.type.value,
            queue=ticket.queue,
        )
        if survey is not None and ticket.survey_id != survey.id:
            await self.tickets.update_one({"_id": ticket.id}, {"$set": {"survey_id": survey.id}})


_GOODS_BACK = frozenset({RequestType.RETURN_REFUND, RequestType.EXCHANGE})
_AFTER_APPROVAL: dict[RequestType, tuple[Step, str]] = {
    RequestType.REFUND: (Step.PAYMENT_PROCESSING, "payment_centre"),
    RequestType.COMPENSATION: (Step.PAYMENT_PROCESSING, "payment_centre"),
    RequestType.RETURN_REFUND: (Step.AWAITING_RETURN, "system:after_sales"),
    RequestType.EXCHANGE: (Step.AWAITING_RETURN, "system:after_sales"),
    RequestType.RESEND: (Step.RESENDING, "warehouse"),
}
_NEXT_NOTICE = {
    TicketType.REFUND: "next_refund",
    TicketType.RETURN_REFUND: "next_return",
    TicketType.EXCHANGE: "next_return",
    TicketType.RESEND: "next_resend",
    TicketType.COMPENSATION: "next_compensation",
}


def notice_text(
    ticket: Ticket, key: str, language: str, *, return_code: str, rule: str | None = None, **values: Any
) -> str:
    type_label = TYPE_LABELS[ticket.type].get(language, TYPE_LABELS[ticket.type]["zh"])
    following = notice(
        _NEXT_NOTICE.get(ticket.type, "next_other"), language, amount=ticket.amount, return_code=return_code
    )
    text = notice(key, language, type=type_label, next=following, **values)
    if rule and key == "approved":
        text = notice("auto_rule", language, rule=rule) + text
    return text


def customer_timeline(ticket: Ticket, language: str = "zh") -> list[dict[str, str]]:
    """The stages the customer sees, repeated ones folded, no actors or internal notes."""
    out: list[dict[str, str]] = []
    for entry in ticket.timeline:
        if entry.kind == "comment" or (entry.from_status is entry.status and entry.kind != "opened"):
            continue
        stage = label(entry.status, language, customer=True)
        if not out or out[-1]["label"] != stage:
            out.append({"label": stage, "at": entry.at.isoformat()})
    return out


def _factor(data: dict[str, Any]) -> PriorityFactor:
    return PriorityFactor(str(data["factor"]), int(data["points"]), str(data["reason"]))


def _document(ticket: Ticket) -> dict[str, Any]:
    doc = ticket.model_dump(mode="json")
    doc.pop("id")
    return doc


def _ticket(doc: dict[str, Any]) -> Ticket:
    data = {k: v for k, v in doc.items() if k not in ("_id", "open_key", "version", "effects_pending", "effects_done")}
    # Tickets written before the life cycle existed carry fewer fields; the defaults fill them.
    return Ticket.model_validate({"id": doc["_id"], **data})
