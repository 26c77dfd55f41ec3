"""What follows from a change to a ticket, run after the change is stored: the audit entry,
the linked after-sales request's steps (approved → payment centre …), the customer's notice on
their channel, agents' alerts, and the survey when a ticket closes.

A change marks the ticket ``effects_pending``; :meth:`TicketEffects.run` does the effects of
the entries not yet done and clears the mark. Every effect is keyed by its timeline entry, so a
process that died half-way is finished by the sweep without doing anything twice.
"""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from backoffice.audit import AuditLog
from backoffice.config import ConfigStore
from backoffice.lifecycle import TYPE_LABELS, TicketStatus, TicketType
from backoffice.notifications import CustomerNotifier, StaffAlerts, notice
from backoffice.surveys import SurveyDesk
from backoffice.ticket_record import Ticket, TicketEntry, from_document
from shop.aftersales import GOODS_BACK, AfterSalesRequest, AfterSalesService, RequestType, Step


class TicketEffects:
    def __init__(
        self,
        tickets: AsyncCollection[dict[str, Any]],
        *,
        config: ConfigStore,
        audit: AuditLog,
        alerts: StaffAlerts,
        aftersales: AfterSalesService | None = None,
        notifier: CustomerNotifier | None = None,
        surveys: SurveyDesk | None = None,
    ) -> None:
        self.tickets = tickets
        self.config = config
        self.audit = audit
        self.alerts = alerts
        self.aftersales = aftersales
        self.notifier = notifier
        self.surveys = surveys

    async def run(self, ticket_id: str) -> None:
        """Audit, request steps, customer notices, alerts and surveys for entries not yet done.
        Each effect is keyed, so running it twice (after a crash) does it once."""
        doc = await self.tickets.find_one({"_id": ticket_id})
        if doc is None:
            return
        ticket = from_document(doc)
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

    async def pending(self) -> list[str]:
        return [str(d["_id"]) async for d in self.tickets.find({"effects_pending": True}, {"_id": 1})]

    async def _sync_request(self, ticket: Ticket, entry: TicketEntry) -> None:
        """The linked after-sales request follows the ticket's decisions, so the customer's
        timeline (退款中 → 退款成功) tells the truth."""
        if self.aftersales is None or not ticket.request_id:
            return
        decided = entry.kind == "decision" and entry.status in (TicketStatus.APPROVED, TicketStatus.REJECTED)
        if not decided and not (entry.kind == "transition" and entry.status is TicketStatus.RESOLVED):
            return  # only decisions and resolving move the request
        request = await self.aftersales.get(ticket.request_id)
        if request is None or not request.open:
            return
        actor = entry.actor
        if entry.status is TicketStatus.APPROVED and entry.kind == "decision":
            if request.status in (Step.APPLIED, Step.REVIEWING):
                details = {"return_code": "RT" + request.id[2:]} if request.type in GOODS_BACK else None
                request = await self.aftersales.advance(
                    request.id, Step.APPROVED, actor=actor, decided_by=actor, note=entry.reason, details=details
                )
            if request.status is Step.APPROVED and (follow := _after_approval(request)) is not None:
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
        return_code = await self._return_code(ticket) if key == "approved" else "-"
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


_AFTER_APPROVAL: dict[RequestType, tuple[Step, str]] = {
    RequestType.REFUND: (Step.PAYMENT_PROCESSING, "payment_centre"),
    RequestType.COMPENSATION: (Step.PAYMENT_PROCESSING, "payment_centre"),
    RequestType.PRICE_PROTECTION: (Step.PAYMENT_PROCESSING, "payment_centre"),
    RequestType.RETURN_REFUND: (Step.AWAITING_RETURN, "system:after_sales"),
    RequestType.EXCHANGE: (Step.AWAITING_RETURN, "system:after_sales"),
    RequestType.RESEND: (Step.RESENDING, "warehouse"),
}
_GOODS_IN_HAND: dict[RequestType, tuple[Step, str]] = {
    RequestType.RETURN_REFUND: (Step.PAYMENT_PROCESSING, "payment_centre"),
    RequestType.EXCHANGE: (Step.GOODS_RECEIVED, "system:after_sales"),
}
"""After a review of goods the warehouse already has (a failed quality check): no second pick-up."""


def _after_approval(request: AfterSalesRequest) -> tuple[Step, str] | None:
    if request.type in _GOODS_IN_HAND and any(e.step is Step.GOODS_RECEIVED for e in request.timeline):
        return _GOODS_IN_HAND[request.type]
    return _AFTER_APPROVAL.get(request.type)


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
