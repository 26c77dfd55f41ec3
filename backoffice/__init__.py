"""Backoffice: what happens when self-service cannot finish the job.

Owns the hand-off desk (conversations waiting for an agent, with the bot's summary), the
after-sales ticket service — life cycle (``lifecycle``), classification (``classify``),
priority (``priority``), history flags, automatic decisions (``decisions``), routing to skill
groups (``assignment``), SLAs and business hours (``sla``, ``sla_monitor``), roles and
permissions (``permissions``, ``workflow``), staff accounts (``staff``), admin configuration
(``config``, ``admin``), notices and alerts (``notifications``), satisfaction surveys
(``surveys``) and the hash-chained audit log (``audit`` over ``ledger``) — and return pick-up
route planning (``backoffice.routing``).

Must not know about channel wire formats or NLU; it receives decisions from the dialogue and
writes through the conversation store (customer notices go out through the outbox).
"""

from backoffice.handoff import HandoffDesk, QueuePlace
from backoffice.lifecycle import TicketStatus, TicketType
from backoffice.priority import Priority
from backoffice.service import Backoffice
from backoffice.ticket_record import Ticket
from backoffice.tickets import TicketDesk

__all__ = [
    "Backoffice",
    "HandoffDesk",
    "Priority",
    "QueuePlace",
    "Ticket",
    "TicketDesk",
    "TicketStatus",
    "TicketType",
]
