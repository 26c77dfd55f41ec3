"""What staff do with tickets, each action checked against their roles and scope: submit,
claim, release, assign, transfer, review (in review, ask the customer, approve, reject,
processing, resolve, close), comment (internal notes and replies to the customer), attach.

Every refusal raises before anything is written: :class:`PermissionDenied` (roles or scope),
``TransitionRefused`` (the life cycle), :class:`ActionInvalid` (a bad value).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from backoffice.assignment import assign_to, held_counts
from backoffice.classify import classify
from backoffice.lifecycle import OPEN, TicketStatus, TicketType, TransitionRefused, check_transition
from backoffice.permissions import (
    Actor,
    Permission,
    PermissionDenied,
    Role,
    can_claim,
    can_reply,
    can_review,
    can_view,
    visible_queues,
)
from backoffice.priority import PriorityAssessment
from backoffice.sla import format_duration
from backoffice.ticket_record import (
    Ticket,
    TicketComment,
    TicketEntry,
    new_entry_id,
    note_response,
    record_decision,
    remark,
    transition,
)
from backoffice.tickets import TicketDesk
from errors import UserError
from shop.aftersales import RequestType, Step

MONEY_OR_GOODS = frozenset(
    {TicketType.REFUND, TicketType.RETURN_REFUND, TicketType.EXCHANGE, TicketType.RESEND, TicketType.COMPENSATION}
)
"""Ticket types that decide an after-sales request (a ticket an agent submits about them creates one)."""

REVIEW_MOVES = frozenset(
    {
        TicketStatus.IN_REVIEW,
        TicketStatus.PENDING_CUSTOMER,
        TicketStatus.APPROVED,
        TicketStatus.REJECTED,
        TicketStatus.PROCESSING,
        TicketStatus.RESOLVED,
    }
)
VIEWS = ("mine", "pool", "team", "submitted", "all")
ACTIONS = (
    "claim", "release", "assign", "transfer",
    *(s.value for s in (TicketStatus.IN_REVIEW, TicketStatus.PENDING_CUSTOMER, TicketStatus.APPROVED,
                        TicketStatus.REJECTED, TicketStatus.PROCESSING, TicketStatus.RESOLVED, TicketStatus.CLOSED)),
    "comment", "reply", "attach",
)  # fmt: skip
"""Everything :func:`allowed_actions` can offer, in the order a console shows them; a status
name is a ``transition`` to it."""


def _moves_to(ticket: Ticket, target: TicketStatus) -> bool:
    try:
        check_transition(ticket.type, ticket.status, target)
    except TransitionRefused:
        return False
    return True


def allowed_actions(actor: Actor, ticket: Ticket) -> list[str]:
    """What ``actor`` may do to ``ticket`` now, by the same rules the workflow enforces (roles,
    scope, life cycle), so the console offers only what the API would accept. Facts read at the
    moment of acting (capacity, the target agent's skills) can still refuse an offered action."""
    scope = ticket.scope()
    if not can_view(actor, scope):
        return []
    status = ticket.status
    holder = ticket.assignee == actor.id
    allowed: set[str] = set()
    if status is TicketStatus.NEW and can_claim(actor, scope):
        allowed.add("claim")
    if (holder or actor.has(Permission.ASSIGN)) and _moves_to(ticket, TicketStatus.NEW):
        allowed.add("release")
    if actor.has(Permission.ASSIGN) and _moves_to(ticket, TicketStatus.ASSIGNED):
        allowed.add("assign")
    if actor.has(Permission.TRANSFER) and (status is TicketStatus.NEW or _moves_to(ticket, TicketStatus.NEW)):
        allowed.add("transfer")
    if can_review(actor, scope):
        allowed |= {target.value for target in REVIEW_MOVES if _moves_to(ticket, target)}
    closer = (holder and actor.has(Permission.REVIEW)) or actor.has(Permission.ASSIGN)
    if closer and _moves_to(ticket, TicketStatus.CLOSED):
        allowed.add(TicketStatus.CLOSED.value)
    if actor.has(Permission.COMMENT):
        allowed |= {"comment", "attach"}
        if ticket.conversation_ids and can_reply(actor, scope):
            allowed.add("reply")
    return [action for action in ACTIONS if action in allowed]


class ActionInvalid(UserError):
    """A value the action cannot take (an unknown queue, a missing reason …)."""

    code = "invalid_action"


class TicketWorkflow:
    def __init__(self, desk: TicketDesk) -> None:
        self.desk = desk

    allowed_actions = staticmethod(allowed_actions)

    async def visible(self, actor: Actor, ticket_id: str) -> Ticket:
        ticket = await self.desk.require(ticket_id)
        if not can_view(actor, ticket.scope()):
            raise PermissionDenied(f"ticket {ticket_id} is not in your queues")
        return ticket

    # -- submitting and listing -----------------------------------------------------------

    async def submit(
        self,
        actor: Actor,
        *,
        customer_id: str,
        summary: str,
        type: TicketType | None = None,
        order_id: str | None = None,
        conversation_id: str | None = None,
        channel: str | None = None,
        amount: float = 0.0,
        evidence: list[str] | None = None,
        ocr_result_ids: list[str] | None = None,
        reason: str | None = None,
    ) -> tuple[Ticket, bool]:
        actor.require(Permission.SUBMIT, "submitting a ticket")
        request_id = None
        if order_id is not None:
            request_id = await self._request_for(
                actor, customer_id=customer_id, summary=summary, type=type, order_id=order_id,
                conversation_id=conversation_id, channel=channel, amount=amount, reason=reason, evidence=evidence,
            )  # fmt: skip
        return await self.desk.open(
            type=type,
            customer_id=customer_id,
            summary=summary,
            conversation_id=conversation_id,
            channel=channel,
            order_id=order_id,
            request_id=request_id,
            reason=reason,
            evidence=evidence,
            amount=amount,
            actor=actor.name,
            submitted_by=actor.id,
            ocr_result_ids=ocr_result_ids,
        )

    async def _request_for(
        self,
        actor: Actor,
        *,
        customer_id: str,
        summary: str,
        type: TicketType | None,
        order_id: str,
        conversation_id: str | None,
        channel: str | None,
        amount: float,
        reason: str | None,
        evidence: list[str] | None,
    ) -> str | None:
        """A ticket about money or goods is decided on an after-sales request, as the bot's are: the
        request (in review) carries both timelines and the refund report counts it."""
        aftersales, orders = self.desk.aftersales, self.desk.orders
        ticket_type = type or classify(text=summary, reason=reason).type
        if aftersales is None or orders is None or ticket_type not in MONEY_OR_GOODS:
            return None
        order = await orders.get(order_id)
        if order is None:
            return None
        request_type = RequestType(ticket_type.value)
        items = [i.model_dump(include={"sku", "name", "quantity", "price"}) for i in order.items]
        if amount <= 0 and request_type in (RequestType.REFUND, RequestType.RETURN_REFUND):
            amount = order.amount
        request, _ = await aftersales.create(
            type=request_type, order_id=order_id, customer_id=customer_id, actor=actor.name,
            conversation_id=conversation_id, channel=channel, items=items, amount=amount,
            reason=reason or summary[:100], evidence=evidence, note=f"客服提交工单：{summary[:200]}",
        )  # fmt: skip
        if request.status is Step.APPLIED:
            await aftersales.advance(request.id, Step.REVIEWING, actor=actor.name, note="工单审核")
        return request.id

    async def listing(
        self,
        actor: Actor,
        view: str,
        *,
        queue: str | None = None,
        status: TicketStatus | None = None,
        priority: str | None = None,
        limit: int = 200,
    ) -> list[tuple[Ticket, PriorityAssessment]]:
        if view not in VIEWS:
            raise ActionInvalid(f"view must be one of {', '.join(VIEWS)}")
        queues = visible_queues(actor, (await self.desk.config.tickets()).queues)
        query: dict[str, Any] = {}
        if view == "mine":
            query["assignee"] = actor.id
        elif view == "pool":
            query["status"] = TicketStatus.NEW.value
            query["queue"] = {"$in": queues}
        elif view == "team":
            query["queue"] = {"$in": queues}
        elif view == "submitted":
            query["submitted_by"] = actor.id
        else:
            actor.require(Permission.VIEW_ALL, "the all-tickets view")
        if queue is not None:
            if view in ("pool", "team") and queue not in queues:
                raise PermissionDenied(f"queue {queue} is not one of yours")
            query["queue"] = queue
        if status is not None:
            if view == "pool" and status is not TicketStatus.NEW:
                raise ActionInvalid("the pool holds new tickets only")
            query["status"] = status.value
        elif "status" not in query:
            query["status"] = {"$in": [s.value for s in OPEN]}
        found = [t for t in await self.desk.find(query, limit=5000) if can_view(actor, t.scope())]
        ranked = await self.desk.queue_order(found)
        if priority is not None:
            ranked = [pair for pair in ranked if pair[1].level.value == priority]
        return ranked[:limit]

    async def pool_summary(self, actor: Actor, language: str = "zh") -> list[dict[str, Any]]:
        """Per queue the actor sees: how many wait to be claimed, by priority, and the oldest's age."""
        config = await self.desk.config.tickets()
        now = self.desk.clock()
        out = []
        for queue in visible_queues(actor, config.queues):
            waiting = await self.desk.find({"status": TicketStatus.NEW.value, "queue": queue}, limit=10000)
            oldest = min((t.created_at for t in waiting), default=None)
            age = (now - oldest).total_seconds() if oldest else 0.0
            ranked = await self.desk.queue_order(waiting)
            out.append(
                {
                    "queue": queue,
                    "label": config.queue_label(queue, language),
                    "count": len(waiting),
                    "by_priority": dict(Counter(p.level.value for _, p in ranked)),
                    "oldest_age": {"seconds": int(age), "text": format_duration(age, language)} if oldest else None,
                }
            )
        return out

    # -- taking tickets -------------------------------------------------------------------

    async def _check_capacity(self, staff_id: str) -> None:
        member = await self.desk.staff.get(staff_id)
        if member is None or member.disabled:
            raise ActionInvalid(f"no active staff member {staff_id}")
        held = (await held_counts(self.desk, [staff_id])).get(staff_id, 0)
        if held >= member.capacity:
            raise ActionInvalid(f"{staff_id} already holds {held} tickets (capacity {member.capacity})")

    async def _check_reviewer(self, staff_id: str, queue: str, *, capacity: bool = True) -> None:
        """``staff_id`` may be given a ticket of ``queue``: an active reviewer of it, with room."""
        member = await self.desk.staff.get(staff_id)
        if member is None or member.disabled or Role.REVIEWER not in member.roles:
            raise ActionInvalid(f"{staff_id} is not an active reviewer")
        if queue not in member.skill_groups:
            raise ActionInvalid(f"{staff_id} does not work the {queue} queue (transfer the ticket instead)")
        if capacity:
            await self._check_capacity(staff_id)

    async def claim(self, actor: Actor, ticket_id: str) -> Ticket:
        ticket = await self.visible(actor, ticket_id)
        if not can_claim(actor, ticket.scope()):
            raise PermissionDenied(f"you cannot claim tickets of the {ticket.queue} queue")
        if ticket.status is TicketStatus.CLAIMED and ticket.assignee == actor.id:
            return ticket  # a retried claim
        await self._check_capacity(actor.id)

        def claim(t: Ticket) -> list[TicketEntry]:
            if t.status is not TicketStatus.NEW:
                raise TransitionRefused(f"ticket {t.id} is {t.status.value}, no longer in the pool")
            t.assignee = actor.id
            return [transition(t, TicketStatus.CLAIMED, actor=actor.name, now=self.desk.clock(), reason="claimed")]

        claimed = await self.desk.apply(ticket_id, claim)
        await self.desk.staff.note_assigned(actor.id, int(self.desk.clock().timestamp() * 1000))
        return claimed

    async def release(self, actor: Actor, ticket_id: str, reason: str) -> Ticket:
        ticket = await self.visible(actor, ticket_id)
        if ticket.assignee != actor.id and not actor.has(Permission.ASSIGN):
            raise PermissionDenied("only the ticket's holder or a dispatcher can put it back in the pool")

        def release(t: Ticket) -> list[TicketEntry]:
            t.assignee = None
            return [transition(t, TicketStatus.NEW, actor=actor.name, now=self.desk.clock(), reason=reason)]

        return await self.desk.apply(ticket_id, release)

    async def assign(self, actor: Actor, ticket_id: str, assignee: str, *, reason: str, force: bool = False) -> Ticket:
        actor.require(Permission.ASSIGN, "assigning a ticket")
        ticket = await self.visible(actor, ticket_id)
        await self._check_reviewer(assignee, ticket.queue, capacity=not force)
        return await assign_to(self.desk, ticket_id, assignee, actor=actor.name, reason=reason)

    async def transfer(
        self, actor: Actor, ticket_id: str, queue: str, *, reason: str, assignee: str | None = None
    ) -> Ticket:
        """To another queue: back to its pool, or straight to one of its agents."""
        actor.require(Permission.TRANSFER, "transferring a ticket")
        await self.visible(actor, ticket_id)
        config = await self.desk.config.tickets()
        if queue not in config.queues:
            raise ActionInvalid(f"unknown queue {queue!r} (queues: {', '.join(config.queues)})")
        if assignee is not None:
            await self._check_reviewer(assignee, queue)

        def move(t: Ticket) -> list[TicketEntry]:
            previous_queue, previous_assignee = t.queue, t.assignee
            t.queue = queue
            now = self.desk.clock()
            data = {
                "from_queue": previous_queue,
                "to_queue": queue,
                "assignee": assignee,
                "previous": previous_assignee,
            }
            if assignee is not None:
                t.assignee = assignee
                target = TicketStatus.ASSIGNED
            elif t.status is TicketStatus.NEW:
                return [remark(t, kind="transfer", actor=actor.name, now=now, reason=reason, **data)]
            else:
                t.assignee = None
                target = TicketStatus.NEW
            kind = "assignment" if assignee is not None else "transfer"
            return [transition(t, target, actor=actor.name, now=now, reason=reason, kind=kind, data=data)]

        return await self.desk.apply(ticket_id, move)

    # -- reviewing ------------------------------------------------------------------------

    async def move(
        self,
        actor: Actor,
        ticket_id: str,
        to: TicketStatus,
        *,
        reason: str | None = None,
        note: str | None = None,
        amount: float | None = None,
    ) -> Ticket:
        ticket = await self.visible(actor, ticket_id)
        if to in REVIEW_MOVES:
            if not can_review(actor, ticket.scope()):
                raise PermissionDenied("decisions belong to the reviewer holding the ticket: claim it first")
        elif to is TicketStatus.CLOSED:
            holder = ticket.assignee == actor.id and actor.has(Permission.REVIEW)
            if not (holder or actor.has(Permission.ASSIGN)):
                raise PermissionDenied("only the ticket's reviewer or a dispatcher can close it")
        elif to is TicketStatus.NEW:
            return await self.release(actor, ticket_id, reason or "released")
        else:
            raise ActionInvalid(f"use assign or claim to make a ticket {to.value}")
        if to is TicketStatus.REJECTED and not reason:
            raise ActionInvalid("a rejection needs a reason (the customer is told it)")
        if to is TicketStatus.PENDING_CUSTOMER and not (note or reason):
            raise ActionInvalid("say what the customer should send (note)")
        if amount is not None:
            if to is not TicketStatus.APPROVED:
                raise ActionInvalid("an amount goes with an approval")
            if amount < 0 or (ticket.order_amount and amount > ticket.order_amount):
                raise ActionInvalid(f"the amount must be between 0 and the order's {ticket.order_amount:.2f}")

        def change(t: Ticket) -> list[TicketEntry]:
            now = self.desk.clock()
            if to in (TicketStatus.APPROVED, TicketStatus.REJECTED):
                return record_decision(t, to, actor=actor.name, now=now, reason=reason, amount=amount)
            return [transition(t, to, actor=actor.name, now=now, reason=reason, note=note)]

        return await self.desk.apply(ticket_id, change)

    async def comment(self, actor: Actor, ticket_id: str, text: str, *, public: bool) -> Ticket:
        ticket = await self.visible(actor, ticket_id)
        actor.require(Permission.COMMENT, "commenting")
        if public and not can_reply(actor, ticket.scope()):
            raise PermissionDenied("only the ticket's holder, its submitter or a dispatcher answers the customer")
        if public and not ticket.conversation_ids:
            raise ActionInvalid("this ticket has no conversation to answer on")

        def add(t: Ticket) -> list[TicketEntry]:
            now = self.desk.clock()
            comment = TicketComment(id=new_entry_id(), author=actor.name, text=text, public=public, at=now)
            t.comments.append(comment)
            if public:
                note_response(t, now)
            return [remark(t, kind="comment", actor=actor.name, now=now, public=public, text=text, comment=comment.id)]

        return await self.desk.apply(ticket_id, add)

    async def attach(self, actor: Actor, ticket_id: str, *, media_ids: list[str], ocr_result_ids: list[str]) -> Ticket:
        await self.visible(actor, ticket_id)
        actor.require(Permission.COMMENT, "attaching files")

        def add(t: Ticket) -> list[TicketEntry]:
            t.evidence = list(dict.fromkeys([*t.evidence, *media_ids]))
            t.ocr_result_ids = list(dict.fromkeys([*t.ocr_result_ids, *ocr_result_ids]))
            return [
                remark(t, kind="attachment", actor=actor.name, now=self.desk.clock(), media=media_ids,
                       ocr=ocr_result_ids)
            ]  # fmt: skip

        return await self.desk.apply(ticket_id, add)
