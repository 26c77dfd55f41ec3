"""The backoffice's sweep, run every minute by each gateway process (every step is keyed, so
several processes sweeping at once do each thing once):

- SLA reminders before a target is breached, to the ticket's holder (or its queue);
- escalation after a breach: priority up, dispatchers alerted, the breach on the timeline;
- pool tickets of auto-assigning queues handed to agents who came online or have room again;
- resolved tickets nobody reopened closed after the configured hours (the survey goes out);
- effects a crashed process left undone (audit entries, notices, request steps) finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import timedelta

from backoffice.assignment import auto_assign
from backoffice.lifecycle import TicketStatus
from backoffice.priority import PRIORITY_RANK, Priority
from backoffice.sla import clocks
from backoffice.ticket_record import Ticket, TicketConflict, TicketEntry, reassess, remark, transition
from backoffice.tickets import TicketDesk

log = logging.getLogger(__name__)

EFFECTS_GRACE = timedelta(seconds=10)
"""Effects younger than this are still being run by the process that made the change."""


@dataclass(slots=True)
class SweepReport:
    warnings: int = 0
    escalations: int = 0
    assigned: int = 0
    closed: int = 0
    effects_finished: int = 0
    requests_audited: int = 0
    problems: list[str] = field(default_factory=list)


class SlaMonitor:
    def __init__(self, desk: TicketDesk, interval_seconds: float = 60.0) -> None:
        self.desk = desk
        self.interval = interval_seconds
        self.completed_sweeps = 0
        """Rounds that ran to the end (a store outage fails rounds; the loop carries on)."""
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="sla-monitor")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.sweep()
                self.completed_sweeps += 1
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("backoffice sweep failed; retrying next round")
            await asyncio.sleep(self.interval)

    async def sweep(self) -> SweepReport:
        report = SweepReport()
        desk = self.desk
        now = desk.clock()
        for ticket_id in await desk.effects.pending():
            ticket = await desk.get(ticket_id)
            if ticket is not None and now - ticket.updated_at >= EFFECTS_GRACE:
                await desk.effects.run(ticket_id)
                report.effects_finished += 1
        if desk.aftersales is not None:
            for request in await desk.aftersales.unreported():
                if now - request.updated_at >= EFFECTS_GRACE:
                    await desk.aftersales.report(request.id)
                    report.requests_audited += 1
        calendar = await desk.calendar()
        sla = calendar.config
        for ticket in await desk.open_tickets():
            try:
                await self._clocks(ticket, report)
                if ticket.status is TicketStatus.NEW and await auto_assign(desk, ticket) is not None:
                    report.assigned += 1
                resolved_at = ticket.sla.resolved_at
                if (
                    ticket.status is TicketStatus.RESOLVED
                    and resolved_at is not None
                    and now - resolved_at >= timedelta(hours=sla.auto_close_after_hours)
                ):
                    await desk.apply(ticket.id, self._auto_close)
                    report.closed += 1
            except TicketConflict as exc:
                report.problems.append(str(exc))
        return report

    def _auto_close(self, ticket: Ticket) -> list[TicketEntry]:
        if ticket.status is not TicketStatus.RESOLVED:
            return []
        return [
            transition(
                ticket, TicketStatus.CLOSED, actor="system:auto_close", now=self.desk.clock(),
                reason="resolved and not reopened",
            )
        ]  # fmt: skip

    async def _clocks(self, ticket: Ticket, report: SweepReport) -> None:
        desk = self.desk
        calendar = await desk.calendar()
        sla = calendar.config
        now = desk.clock()
        targets = sla.targets_for(ticket.type, ticket.priority)
        holder = [f"staff:{ticket.assignee}"] if ticket.assignee else [f"queue:{ticket.queue}"]
        for clock in clocks(ticket.sla_facts(), targets, calendar.hours, now, sla.warn_at):
            key = f"sla:{ticket.id}:{clock.name}:{clock.started_at.isoformat()}"
            minutes = round(clock.remaining_seconds / 60)
            if clock.state == "warning":
                created = await desk.alerts.raise_alert(
                    f"{key}:warning", kind="sla_warning", ticket_id=ticket.id, audience=holder,
                    text={"zh": f"工单 {ticket.id} 的{_CLOCK_ZH[clock.name]}时限还剩 {minutes} 分钟",
                          "en": f"Ticket {ticket.id}: {minutes} min left for {clock.name.replace('_', ' ')}"},
                )  # fmt: skip
                report.warnings += int(created)
            elif (
                clock.state == "breached" and f"{clock.name}@{clock.started_at.isoformat()}" not in ticket.sla.breached
            ):
                await desk.alerts.raise_alert(
                    f"{key}:breached", kind="sla_breached", ticket_id=ticket.id, audience=[*holder, "role:dispatcher"],
                    text={"zh": f"工单 {ticket.id} 的{_CLOCK_ZH[clock.name]}已超时",
                          "en": f"Ticket {ticket.id} breached its {clock.name.replace('_', ' ')} target"},
                )  # fmt: skip
                marker = f"{clock.name}@{clock.started_at.isoformat()}"

                def escalate(
                    t: Ticket,
                    marker: str = marker,
                    name: str = clock.name,
                    raise_to: Priority = sla.escalation.raise_to,
                ) -> list[TicketEntry]:
                    if marker in t.sla.breached:
                        return []
                    t.sla.breached.append(marker)
                    t.sla.escalated = True
                    reassess(t)
                    if PRIORITY_RANK[t.priority] < PRIORITY_RANK[raise_to]:
                        t.priority = raise_to
                    return [remark(t, kind="escalation", actor="system:sla", now=now, reason=f"{name} SLA breached")]

                await desk.apply(ticket.id, escalate)
                report.escalations += 1


_CLOCK_ZH = {"first_response": "首次响应", "next_response": "再次响应", "resolution": "解决"}
