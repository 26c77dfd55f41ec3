"""Backoffice: what happens when self-service cannot finish the job.

Owns the hand-off desk (queueing conversations for a human agent with their place in line),
return pick-up route planning (``backoffice.routing``), the hash-chained ledger for records that
must stay verifiable (``backoffice.ledger``), after-sales tickets (``backoffice.tickets``) and, as it grows,
ticket routing, SLAs, permissions and audit.

Must not know about channel wire formats or NLU; it receives decisions from the dialogue and
writes through the conversation store.
"""

from backoffice.handoff import HandoffDesk, QueuePlace
from backoffice.tickets import Priority, Ticket, TicketDesk, TicketType

__all__ = ["HandoffDesk", "Priority", "QueuePlace", "Ticket", "TicketDesk", "TicketType"]
