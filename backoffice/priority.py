"""Ticket priority: a score from named factors, each with its points and a reason an agent can
read, and the level the score falls in.

Factors: the ticket type's base, order amount, customer tier, the customer's urgency (urges,
urgent words), food safety, repeat contacts on the same problem, an earlier complaint, an SLA
breach, and waiting time in the pool (added when the queue is read, so old tickets rise).

The hand-off queue reuses the same factors (:func:`assess_need`), with the customer's emotion in
place of the ticket type and waiting counted in minutes.

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


def _amount(amount: float) -> PriorityFactor | None:
    if amount >= HIGH_VALUE_AMOUNT:
        return PriorityFactor("amount", 30, REASON_HIGH_VALUE.format(amount=amount))
    if amount >= MEDIUM_VALUE_AMOUNT:
        return PriorityFactor("amount", 10, f"order amount {amount:.2f}")
    return None


def _tier(customer_tier: str | None) -> PriorityFactor | None:
    tier = (customer_tier or "").lower()
    return PriorityFactor("tier", TIER_POINTS[tier], f"{tier} customer") if tier in TIER_POINTS else None


def _food_safety(food_safety: bool) -> PriorityFactor | None:
    return PriorityFactor("food_safety", 60, REASON_FOOD_SAFETY) if food_safety else None


def _urgency(urges: int, urgent_words: bool) -> PriorityFactor | None:
    if urges > 0:
        return PriorityFactor("urged", 30 + 5 * min(urges - 1, 4), REASON_URGED)
    if urgent_words:
        return PriorityFactor("urgent_words", 10, "customer says it is urgent")
    return None


def _repeat(contacts: int, earlier_complaint: bool) -> PriorityFactor | None:
    if contacts > 1:
        return PriorityFactor("repeat", 30 + 10 * min(contacts - 2, 2), REASON_REPEAT)
    if earlier_complaint:
        return PriorityFactor("repeat", 20, REASON_REPEAT)
    return None


def _scored(factors: list[PriorityFactor | None]) -> PriorityAssessment:
    kept = [f for f in factors if f is not None]
    score = sum(f.points for f in kept)
    return PriorityAssessment(level_for(score), score, tuple(kept))


def assess(inputs: PriorityInputs) -> PriorityAssessment:
    return _scored(
        [
            PriorityFactor("type", TYPE_BASE[inputs.type], f"{inputs.type.value} ticket"),
            _amount(inputs.amount),
            _tier(inputs.customer_tier),
            _food_safety(inputs.food_safety),
            _urgency(inputs.urges, inputs.urgent_words),
            _repeat(inputs.contacts, inputs.earlier_complaint),
            PriorityFactor("sla_breach", 25, "SLA breached") if inputs.sla_breached else None,
        ]
    )


EMOTION_POINTS = {"angry": 40, "negative": 15}
HANDOFF_WAITING_POINTS_PER_MINUTE = 1.0
HANDOFF_WAITING_POINTS_MAX = 30


@dataclass(frozen=True, slots=True)
class NeedInputs:
    """What a conversation handed to a person needs, from the dialogue's reading of it."""

    emotion: str | None = None
    """``angry`` or ``negative`` (``dialogue.emotion``'s level), else None."""
    complaint_threat: bool = False
    urgent_words: bool = False
    urges: int = 0
    food_safety: bool = False
    amount: float = 0.0
    customer_tier: str | None = None
    contacts: int = 1
    """Earlier hand-offs or tickets on the same problem, this one included."""
    earlier_complaint: bool = False


def assess_need(inputs: NeedInputs) -> PriorityAssessment:
    """A hand-off's place in the agents' queue: the ticket factors that apply to a conversation
    (amount, tier, food safety, urgency, repeats) plus the customer's emotion; waiting time is
    added while it waits (:func:`handoff_waiting_factor`)."""
    emotion: PriorityFactor | None = None
    if inputs.emotion in EMOTION_POINTS or inputs.complaint_threat:
        points = max(EMOTION_POINTS.get(inputs.emotion or "", 0), 40 if inputs.complaint_threat else 0)
        what = "threatens to complain" if inputs.complaint_threat else f"{inputs.emotion} customer"
        emotion = PriorityFactor("emotion", points, what)
    return _scored(
        [
            emotion,
            _amount(inputs.amount),
            _tier(inputs.customer_tier),
            _food_safety(inputs.food_safety),
            _urgency(inputs.urges, inputs.urgent_words),
            _repeat(inputs.contacts, inputs.earlier_complaint),
        ]
    )


def handoff_waiting_factor(minutes_waited: float) -> PriorityFactor | None:
    """Points for minutes in the hand-off queue, so nobody waits behind newer needs for ever."""
    points = min(HANDOFF_WAITING_POINTS_MAX, int(minutes_waited * HANDOFF_WAITING_POINTS_PER_MINUTE))
    return PriorityFactor("waiting", points, f"waiting {minutes_waited:.0f} min") if points > 0 else None


def waiting_factor(business_hours_waited: float) -> PriorityFactor | None:
    """Points for time in the pool, added when the queue is read."""
    points = min(WAITING_POINTS_MAX, int(business_hours_waited * WAITING_POINTS_PER_HOUR))
    if points <= 0:
        return None
    return PriorityFactor("waiting", points, f"waiting {business_hours_waited:.1f} business hours")
