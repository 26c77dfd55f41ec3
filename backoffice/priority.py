"""Ticket priority: a score from named factors, each with its points and a reason an agent can
read, and the level the score falls in.

Factors: the ticket type's base, order amount, customer tier, the customer's urgency (urges,
urgent words), food safety, repeat contacts on the same problem, an earlier complaint, an SLA
breach, and waiting time in the pool (added when the queue is read, so old tickets rise).

Pure functions; the numbers are tuned so high-value and food-safety cases come first.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import textpatterns
from backoffice.lifecycle import TicketType


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


LEVEL_FLOORS: tuple[tuple[Priority, int], ...] = ((Priority.URGENT, 90), (Priority.HIGH, 50), (Priority.NORMAL, 20))
PRIORITY_RANK = {Priority.LOW: 0, Priority.NORMAL: 1, Priority.HIGH: 2, Priority.URGENT: 3}

TYPE_BASE: dict[TicketType, int] = {
    TicketType.COMPLAINT: 30,
    TicketType.ORDER_CHANGE: 25,
    TicketType.REFUND: 20,
    TicketType.RETURN_REFUND: 20,
    TicketType.EXCHANGE: 20,
    TicketType.RESEND: 20,
    TicketType.COMPENSATION: 20,
    TicketType.GENERAL: 15,
    TicketType.INVOICE: 10,
}
HIGH_VALUE_AMOUNT = 1000.0
MEDIUM_VALUE_AMOUNT = 300.0
TIER_POINTS = {"vip": 20, "platinum": 20, "gold": 10, "silver": 5}
WAITING_POINTS_PER_HOUR = 2
WAITING_POINTS_MAX = 30

URGENT_WORDS = textpatterns.compile(
    r"(急|马上|立刻|赶紧|今天必须|尽快|等不了|十万火急|urgent|asap|immediately)", textpatterns.IGNORECASE
)

# Reasons older tickets carry; kept word for word so stored tickets and reports stay comparable.
REASON_HIGH_VALUE = "high value order ({amount:.2f})"
REASON_FOOD_SAFETY = "food safety"
REASON_REPEAT = "repeat contact on the same problem"
REASON_URGED = "customer urged"
REASON_STANDARD = "standard"


@dataclass(frozen=True, slots=True)
class PriorityFactor:
    factor: str
    points: int
    reason: str


@dataclass(frozen=True, slots=True)
class PriorityInputs:
    type: TicketType
    amount: float = 0.0
    customer_tier: str | None = None
    food_safety: bool = False
    urges: int = 0
    urgent_words: bool = False
    contacts: int = 1
    earlier_complaint: bool = False
    sla_breached: bool = False


@dataclass(frozen=True, slots=True)
class PriorityAssessment:
    level: Priority
    score: int
    factors: tuple[PriorityFactor, ...]

    @property
    def reasons(self) -> list[str]:
        """What the agent reads: every factor but the type's base, or "standard"."""
        return [f.reason for f in self.factors if f.factor != "type"] or [REASON_STANDARD]


def level_for(score: int) -> Priority:
    for level, floor in LEVEL_FLOORS:
        if score >= floor:
            return level
    return Priority.LOW


def assess(inputs: PriorityInputs) -> PriorityAssessment:
    factors = [PriorityFactor("type", TYPE_BASE[inputs.type], f"{inputs.type.value} ticket")]
    if inputs.amount >= HIGH_VALUE_AMOUNT:
        factors.append(PriorityFactor("amount", 30, REASON_HIGH_VALUE.format(amount=inputs.amount)))
    elif inputs.amount >= MEDIUM_VALUE_AMOUNT:
        factors.append(PriorityFactor("amount", 10, f"order amount {inputs.amount:.2f}"))
    tier = (inputs.customer_tier or "").lower()
    if tier in TIER_POINTS:
        factors.append(PriorityFactor("tier", TIER_POINTS[tier], f"{tier} customer"))
    if inputs.food_safety:
        factors.append(PriorityFactor("food_safety", 60, REASON_FOOD_SAFETY))
    if inputs.urges > 0:
        factors.append(PriorityFactor("urged", 30 + 5 * min(inputs.urges - 1, 4), REASON_URGED))
    elif inputs.urgent_words:
        factors.append(PriorityFactor("urgent_words", 10, "customer says it is urgent"))
    if inputs.contacts > 1:
        factors.append(PriorityFactor("repeat", 30 + 10 * min(inputs.contacts - 2, 2), REASON_REPEAT))
    elif inputs.earlier_complaint:
        factors.append(PriorityFactor("repeat", 20, REASON_REPEAT))
    if inputs.sla_breached:
        factors.append(PriorityFactor("sla_breach", 25, "SLA breached"))
    score = sum(f.points for f in factors)
    return PriorityAssessment(level_for(score), score, tuple(factors))


def waiting_factor(business_hours_waited: float) -> PriorityFactor | None:
    """Points for time in the pool, added when the queue is read."""
    points = min(WAITING_POINTS_MAX, int(business_hours_waited * WAITING_POINTS_PER_HOUR))
    if points <= 0:
        return None
    return PriorityFactor("waiting", points, f"waiting {business_hours_waited:.1f} business hours")
