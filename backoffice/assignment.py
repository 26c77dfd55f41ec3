"""Routing tickets to people: the least-loaded online reviewer with the queue's skill and room
under their capacity gets a new ticket (ties: who waited longest since their last one).

Queues not listed in ``auto_assign`` keep their tickets in the to-claim pool. Two gateway
processes assigning at the same moment may put one ticket over an agent's capacity; the next
assignment sees the true load.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from backoffice.lifecycle import OPEN, TicketStatus
from backoffice.ticket_record import Ticket, TicketEntry, transition

if TYPE_CHECKING:
    from backoffice.tickets import TicketDesk

ROUTER = "system:router"
LOAD_STATUSES = frozenset(OPEN - {TicketStatus.NEW, TicketStatus.RESOLVED})


@dataclass(frozen=True, slots=True)
class AgentLoad:
    staff_id: str
    capacity: int
    open_tickets: int
    last_assigned_ms: int

    @property
    def ratio(self) -> float:
        return self.open_tickets / self.capacity if self.capacity else 1.0


def pick_agent(loads: list[AgentLoad]) -> str | None:
    """The agent with the most room, or None when everyone is full."""
    available = [a for a in loads if a.open_tickets < a.capacity]
    if not available:
        return None
    return min(available, key=lambda a: (a.ratio, a.open_tickets, a.last_assigned_ms, a.staff_id)).staff_id


async def held_counts(desk: TicketDesk, staff_ids: list[str]) -> Counter[str]:
    """How many tickets each of these people holds (what counts against their capacity)."""
    held = await desk.find(
        {"assignee": {"$in": staff_ids}, "status": {"$in": [s.value for s in LOAD_STATUSES]}}, limit=100_000
    )
    return Counter(t.assignee for t in held if t.assignee)


async def loads_for(desk: TicketDesk, queue: str) -> list[AgentLoad]:
    candidates = await desk.staff.candidates(queue)
    if not candidates:
        return []
    held = await held_counts(desk, [c.id for c in candidates])
    return [AgentLoad(c.id, c.capacity, held.get(c.id, 0), c.last_assigned_ms) for c in candidates]


async def auto_assign(desk: TicketDesk, ticket: Ticket) -> Ticket | None:
    """Assign a pool ticket if its queue auto-assigns and someone has room; None otherwise."""
    if ticket.status is not TicketStatus.NEW:
        return None
    config = await desk.config.tickets()
    if ticket.queue not in config.auto_assign:
        return None
    chosen = pick_agent(await loads_for(desk, ticket.queue))
    if chosen is None:
        return None
    assigned = await assign_to(
        desk, ticket.id, chosen, actor=ROUTER, reason="least-loaded agent with the skill", from_pool=True
    )
    return assigned if assigned.assignee == chosen else None  # someone claimed it meanwhile


async def assign_pool(desk: TicketDesk, queues: list[str]) -> int:
    """Hand these queues' pool tickets out (someone came online), most urgent first."""
    assigned = 0
    for queue in queues:
        pool = await desk.find({"status": TicketStatus.NEW.value, "queue": queue}, limit=10000)
        for ticket, _ in await desk.queue_order(pool):
            if await auto_assign(desk, ticket) is None:
                break  # the queue does not auto-assign, or everyone with room has one: the rest wait
            assigned += 1
    return assigned


async def assign_to(
    desk: TicketDesk, ticket_id: str, staff_id: str, *, actor: str, reason: str, from_pool: bool = False
) -> Ticket:
    """Give the ticket to ``staff_id``; with ``from_pool`` only while it is still in the pool."""

    def assign(ticket: Ticket) -> list[TicketEntry]:
        if ticket.assignee == staff_id and ticket.status is TicketStatus.ASSIGNED:
            return []
        if from_pool and ticket.status is not TicketStatus.NEW:
            return []
        previous = ticket.assignee
        ticket.assignee = staff_id
        entry = transition(
            ticket, TicketStatus.ASSIGNED, actor=actor, now=desk.clock(), reason=reason, kind="assignment",
            data={"assignee": staff_id, "previous": previous},
        )  # fmt: skip
        return [entry]

    assigned = await desk.apply(ticket_id, assign)
    if assigned.assignee == staff_id:
        await desk.staff.note_assigned(staff_id, int(desk.clock().timestamp() * 1000))
    return assigned
