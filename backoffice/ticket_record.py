"""The ticket record (售后工单) and how one changes: its fields, its timeline entries, the
status moves that keep the SLA facts right, priority reassessment, and the customer's view of
the timeline.

Pure data and functions; storing tickets and the effects of a change are ``backoffice.tickets``
and ``backoffice.effects``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from pydantic import BaseModel, Field

from backoffice.lifecycle import (
    CUSTOMER_VISIBLE,
    DECISION_TYPES,
    OPEN,
    TicketStatus,
    TicketType,
    check_transition,
    label,
)
from backoffice.permissions import TicketScope
from backoffice.priority import URGENT_WORDS, Priority, PriorityAssessment, PriorityFactor, PriorityInputs, assess
from backoffice.sla import SlaFacts
from errors import Conflict, NotFound

STORAGE_FIELDS = ("_id", "open_key", "version", "effects_pending", "effects_done")
"""Bookkeeping fields of the stored document that are not part of the record."""


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


class TicketNotFound(NotFound, KeyError):
    """No such ticket (or none this caller may know of)."""


class TicketConflict(Conflict):
    """The ticket kept changing under concurrent writers; re-read and try again."""


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
    ticket: Ticket,
    *,
    kind: str,
    actor: str,
    now: datetime,
    reason: str | None = None,
    note: str | None = None,
    **data: Any,
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
        note=note,
        data=data,
    )
    ticket.timeline.append(entry)
    return entry


def record_decision(
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


def factor_from(data: dict[str, Any]) -> PriorityFactor:
    return PriorityFactor(str(data["factor"]), int(data["points"]), str(data["reason"]))


def to_document(ticket: Ticket) -> dict[str, Any]:
    doc = ticket.model_dump(mode="json")
    doc.pop("id")
    return doc


def from_document(doc: dict[str, Any]) -> Ticket:
    data = {k: v for k, v in doc.items() if k not in STORAGE_FIELDS}
    # Tickets written before the life cycle existed carry fewer fields; the defaults fill them.
    return Ticket.model_validate({"id": doc["_id"], **data})
