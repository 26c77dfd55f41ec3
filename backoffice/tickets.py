"""After-sales tickets (售后工单): what self-service cannot finish, for people to decide.

Owns storing tickets: opening one (classified, routed to a queue, prioritised with reasons,
checked against the customer's and the SKU's history, decided at once when a rule allows),
joining a repeat contact to the open ticket of the same problem, changing a ticket under its
version so concurrent writers cannot interleave, and reading tickets in queue order with their
age, SLA clocks and explained priority. What follows a change is ``backoffice.effects``.

Who may make a change is ``backoffice.workflow``'s concern; when the clocks say so is
``backoffice.sla_monitor``'s. Knows nothing of dialogue wording or channel wire formats.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from backoffice.assignment import auto_assign
from backoffice.audit import AuditLog
from backoffice.classify import CATEGORY_LABELS, classify
from backoffice.config import ConfigStore, SlaConfig
from backoffice.decisions import DecisionFacts, decide
from backoffice.effects import TicketEffects
from backoffice.history import find_history
from backoffice.lifecycle import DECISION_TYPES, OPEN, TYPE_LABELS, TicketStatus, TicketType, label
from backoffice.notifications import CustomerNotifier, StaffAlerts
from backoffice.priority import PRIORITY_RANK, Priority, PriorityAssessment, level_for, waiting_factor
from backoffice.sla import BusinessHours, clocks, format_duration
from backoffice.staff import StaffDirectory
from backoffice.surveys import SurveyDesk
from backoffice.ticket_record import (
    HistoryFlag,
    Ticket,
    TicketConflict,
    TicketEntry,
    TicketNotFound,
    customer_timeline,
    factor_from,
    from_document,
    new_entry_id,
    reassess,
    record_decision,
    remark,
    to_document,
    transition,
)
from shop import OrderLookup
from shop.aftersales import AfterSalesService
from store.mongo import ConversationStore, array_indexes_work

log = logging.getLogger(__name__)

AWAITING = "tickets"
"""The kind of ``Conversation.awaiting`` flags a ticket waiting for the customer sets."""

WRITE_ATTEMPTS = 8


def _now() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


@dataclass(frozen=True, slots=True)
class Calendar:
    config: SlaConfig
    hours: BusinessHours


Mutation = Callable[[Ticket], list[TicketEntry]]
"""Changes a copy of the ticket in place and returns the timeline entries it added; raises to refuse."""


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
        conversation_ocr: Callable[[str], Awaitable[list[str]]] | None = None,
        conversations: ConversationStore | None = None,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.db = db
        self.conversations = conversations
        """Flags the conversations a ticket waits on (``Conversation.awaiting``); None: no turn asks
        this desk about the customer's answers."""
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
        self.conversation_ocr = conversation_ocr
        """OCR results of photos sent in a conversation, linked to the tickets opened from it."""
        self.clock = clock
        self._calendar: tuple[int, Calendar] | None = None
        self.effects = TicketEffects(
            self.tickets, config=self.config, audit=self.audit, alerts=self.alerts, aftersales=aftersales,
            notifier=notifier, surveys=surveys,
        )  # fmt: skip

    async def ensure_indexes(self) -> None:
        await self.tickets.create_index(
            "open_key", unique=True, partialFilterExpression={"open_key": {"$exists": True}}
        )
        await self.tickets.create_index([("customer_id", ASCENDING)])
        await self.tickets.create_index([("status", ASCENDING)])
        await self.tickets.create_index([("queue", ASCENDING)])
        await self.tickets.create_index([("category", ASCENDING)])
        await self.tickets.create_index([("assignee", ASCENDING)])
        await self.tickets.create_index([("request_id", ASCENDING)])
        array_indexes = await array_indexes_work(self.db)
        if array_indexes:
            await self.tickets.create_index([("skus", ASCENDING)])
            await self.tickets.create_index([("conversation_ids", ASCENDING)])
            await self.tickets.create_index([("ocr_result_ids", ASCENDING)])
        await self.tickets.create_index([("effects_pending", ASCENDING)])
        await self.audit.ensure_indexes()
        await self.staff.ensure_indexes(array_indexes=array_indexes)
        await self.alerts.ensure_indexes(array_indexes=array_indexes)
        if self.surveys is not None:
            await self.surveys.ensure_indexes()
        await self._flag_waiting_tickets()

    async def _flag_waiting_tickets(self) -> None:
        """Flag the conversations of tickets that wait for the customer (tickets set waiting
        before conversations carried the flag); at start, by the indexed status."""
        if self.conversations is None:
            return
        waiting = self.tickets.find(
            {"status": TicketStatus.PENDING_CUSTOMER.value}, {"conversation_ids": 1, "version": 1}
        )
        async for doc in waiting:
            await self.conversations.flag_awaiting(
                doc.get("conversation_ids") or [], AWAITING, str(doc["_id"]), int(doc.get("version", 1))
            )

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
            joined = await self._join(existing["_id"], conversation_id, channel, evidence or [], summary, actor)
            return joined, False

        now = self.clock()
        order = await self.orders.get(order_id) if self.orders is not None and order_id else None
        request = await self.aftersales.get(request_id) if self.aftersales is not None and request_id else None
        skus = [str(i["sku"]) for i in request.items if i.get("sku")] if request and request.items else []
        if not skus and order is not None:
            skus = [i.sku for i in order.items]
        claim_amount = request.amount if request is not None and request.amount > 0 else amount
        if conversation_id and self.conversation_ocr is not None:
            ocr_result_ids = list(
                dict.fromkeys([*(ocr_result_ids or []), *await self.conversation_ocr(conversation_id)])
            )
        tickets_config = await self.config.tickets()
        queue = tickets_config.queue_for(ticket_type, classification.category)
        history = await find_history(
            self._tickets, tickets_config.history, customer_id=customer_id, skus=skus,
            category=classification.category, ticket_type=ticket_type, now=now,
        )  # fmt: skip
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
        doc = to_document(ticket)
        doc.update(_id=ticket.id, open_key=open_key, version=1, effects_pending=True, effects_done=0)
        try:
            await self.tickets.insert_one(doc)
        except DuplicateKeyError:
            existing = await self.tickets.find_one({"open_key": open_key})
            if existing is None:
                raise
            joined = await self._join(existing["_id"], conversation_id, channel, evidence or [], summary, actor)
            return joined, False
        if request is not None and self.aftersales is not None:
            await self.aftersales.link_ticket(request.id, ticket.id)
        await self.effects.run(ticket.id)
        for related in history.defect_related:
            await self._flag_related(related, history.defect_flag, ticket.id)
        ticket = await self._decide_or_route(ticket, claims=history.claims_in_window, quiet=quiet)
        return ticket, True

    async def _decide_or_route(self, ticket: Ticket, *, claims: int, quiet: bool) -> Ticket:
        """An automatic decision if a rule allows one, else an agent if the queue auto-assigns."""
        rules = await self.config.rules()
        now = self.clock()
        days = (now - ticket.delivered_at).total_seconds() / 86400 if ticket.delivered_at else None
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
                return record_decision(
                    t, target, actor=actor, now=self.clock(), reason=decision.rule, rule=decision.rule,
                    explanation=list(decision.explanation), quiet=quiet,
                )  # fmt: skip

            return await self.apply(ticket.id, decide_now)
        return await auto_assign(self, ticket) or ticket

    # -- repeat contacts ------------------------------------------------------------------

    async def _join(
        self,
        ticket_id: str,
        conversation_id: str | None,
        channel: str | None,
        evidence: list[str],
        summary: str,
        actor: str = "system:self_service",
    ) -> Ticket:
        """The same problem raised again: one more contact, the conversation and channel added,
        priority up; a resolved ticket opens again. Raised by the customer (through the bot);
        a member of staff submitting it again only adds a note in their own name — the ticket's
        status stays for the people who hold it to change."""
        by_staff = not actor.startswith("system:")

        def join(ticket: Ticket) -> list[TicketEntry]:
            now = self.clock()
            if by_staff:
                ticket.contacts += 1
                return [
                    remark(ticket, kind="contact", actor=actor, now=now, reason="submitted again", note=summary[:500])
                ]
            if conversation_id:
                ticket.conversation_ids = list(dict.fromkeys([*ticket.conversation_ids, conversation_id]))
            if channel:
                ticket.channels = list(dict.fromkeys([*ticket.channels, channel]))
            ticket.evidence = list(dict.fromkeys([*ticket.evidence, *evidence]))
            ticket.contacts += 1
            if ticket.sla.awaiting_since is None and ticket.sla.first_response_at is not None:
                ticket.sla.awaiting_since = now
            reassess(ticket)
            entries = [
                remark(ticket, kind="contact", actor="customer", now=now, reason="raised again", note=summary[:500])
            ]
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

    async def customer_replied(
        self, conversation_id: str, awaiting: Mapping[str, int], media_ids: Sequence[str] = ()
    ) -> list[Ticket]:
        """A message on a conversation whose ticket waits for the customer: the ticket goes back
        to review (photos sent are added as evidence). ``awaiting``: the conversation's flags
        (``Conversation.awaiting["tickets"]``): only flagged tickets are read (no query on the turn
        path), and the flags of tickets no longer waiting are cleared."""

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

        resumed: list[Ticket] = []
        for ticket_id, flagged in awaiting.items():
            doc = await self.tickets.find_one({"_id": ticket_id}, {"status": 1, "version": 1})
            if doc is not None and doc.get("status") == TicketStatus.PENDING_CUSTOMER.value:
                resumed.append(await self.apply(ticket_id, resume))
            elif doc is not None and int(doc.get("version", 1)) < flagged:
                continue  # the write that sets it waiting has not landed yet (or died): the flag stays
            if self.conversations is not None:
                await self.conversations.clear_awaiting(conversation_id, AWAITING, ticket_id, flagged)
        return resumed

    # -- history --------------------------------------------------------------------------

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

    async def _tickets(self, query: dict[str, Any]) -> AsyncIterator[Ticket]:
        async for doc in self.tickets.find(query):
            yield from_document(doc)

    async def get(self, ticket_id: str) -> Ticket | None:
        doc = await self.tickets.find_one({"_id": ticket_id})
        return from_document(doc) if doc else None

    async def require(self, ticket_id: str) -> Ticket:
        ticket = await self.get(ticket_id)
        if ticket is None:
            raise TicketNotFound(f"no ticket {ticket_id}", ticket_id=ticket_id)
        return ticket

    async def for_customer(self, customer_id: str) -> list[Ticket]:
        found = [t async for t in self._tickets({"customer_id": customer_id})]
        return sorted(found, key=lambda t: t.created_at)

    async def find(self, query: dict[str, Any], *, limit: int = 500) -> list[Ticket]:
        return [from_document(d) async for d in self.tickets.find(query).limit(limit)]

    async def holding_reading(self, result_id: str, request_id: str | None = None) -> list[Ticket]:
        """Tickets a photo's reading belongs to: listed on them, or read for their request."""
        found = await self.find({"ocr_result_ids": result_id}, limit=50)
        if request_id:
            found += await self.find({"request_id": request_id}, limit=50)
        return found

    async def open_tickets(self, **query: Any) -> list[Ticket]:
        statuses = [s.value for s in OPEN]
        return await self.find({"status": {"$in": statuses}, **query}, limit=5000)

    async def effective_priority(self, ticket: Ticket, now: datetime | None = None) -> PriorityAssessment:
        """The stored priority plus points for time waited in business hours (old tickets rise)."""
        now = now or self.clock()
        calendar = await self.calendar()
        factors = [factor_from(f) for f in ticket.priority_factors]
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

    async def request_withdrawn(self, ticket_id: str, request_id: str) -> Ticket | None:
        """The customer took back the request this ticket decides: a ticket nobody has claimed is
        closed; one in a person's hands gets a note, so they stop working on it."""
        if await self.get(ticket_id) is None:
            return None

        def withdrawn(ticket: Ticket) -> list[TicketEntry]:
            now = self.clock()
            if ticket.status is TicketStatus.NEW:
                return [transition(ticket, TicketStatus.CLOSED, actor="customer", now=now, reason="request_withdrawn",
                                   note=f"客户撤回售后申请 {request_id}")]  # fmt: skip
            if ticket.status in (TicketStatus.CLOSED, TicketStatus.RESOLVED):
                return []
            return [remark(ticket, kind="contact", actor="customer", now=now, reason="request_withdrawn",
                           note=f"客户撤回售后申请 {request_id}，请停止处理")]  # fmt: skip

        return await self.apply(ticket_id, withdrawn)

    async def attach_readings(self, ticket_id: str, result_ids: list[str], *, actor: str = "system:ocr") -> Ticket:
        """Fields read off the ticket's photos (OCR results), attached by the system as they arrive."""

        def add(t: Ticket) -> list[TicketEntry]:
            new = [r for r in result_ids if r not in t.ocr_result_ids]
            if not new:
                return []
            t.ocr_result_ids = [*t.ocr_result_ids, *new]
            return [remark(t, kind="attachment", actor=actor, now=self.clock(), media=[], ocr=new)]

        return await self.apply(ticket_id, add)

    async def apply(self, ticket_id: str, mutation: Mutation) -> Ticket:
        """Change a ticket under its version (concurrent writers retry on the fresh copy), then
        run the effects of the entries it added."""
        for _ in range(WRITE_ATTEMPTS):
            doc = await self.tickets.find_one({"_id": ticket_id})
            if doc is None:
                raise TicketNotFound(f"no ticket {ticket_id}", ticket_id=ticket_id)
            ticket = from_document(doc)
            version = int(doc.get("version", 1))
            unchanged = to_document(ticket)
            entries = mutation(ticket)
            if not entries and to_document(ticket) == unchanged:
                return ticket  # nothing to write (a retried action, or one that no longer applies)
            ticket.updated_at = self.clock()
            if ticket.status is TicketStatus.PENDING_CUSTOMER and self.conversations is not None:
                await self.conversations.flag_awaiting(ticket.conversation_ids, AWAITING, ticket_id, version + 1)
            changes = to_document(ticket)
            changes["version"] = version + 1
            if entries:
                changes["effects_pending"] = True
            update: dict[str, Any] = {"$set": changes}
            if ticket.status is TicketStatus.CLOSED:
                update["$unset"] = {"open_key": ""}
            result = await self.tickets.update_one({"_id": ticket_id, "version": version}, update)
            if result.matched_count == 1:
                if entries:
                    await self.effects.run(ticket_id)
                fresh = await self.get(ticket_id)
                assert fresh is not None
                return fresh
        raise TicketConflict(f"ticket {ticket_id} kept changing; try again")

    async def first_response_hours(self, ticket: Ticket) -> int:
        """The first-response target in whole business hours, for what the customer is promised."""
        calendar = await self.calendar()
        minutes = calendar.config.targets_for(ticket.type, ticket.priority).first_response or 24 * 60
        return max(1, -(-minutes // 60))

    async def decision_notice(self, ticket: Ticket, language: str) -> str | None:
        """What the customer is told of an automatic decision, for a caller that tells them itself."""
        return await self.effects.decision_notice(ticket, language)
