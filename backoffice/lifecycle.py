"""The after-sales ticket life cycle: statuses, the transitions allowed between them, and what
each status means for the SLA clock and for the customer.

Pure data and functions: no storage, no permissions (``backoffice.permissions`` decides who may
make a transition), no wording beyond the status labels.
"""

from __future__ import annotations

from enum import StrEnum

from errors import Conflict


class TicketType(StrEnum):
    REFUND = "refund"
    RETURN_REFUND = "return_refund"
    EXCHANGE = "exchange"
    RESEND = "resend"
    COMPENSATION = "compensation"
    COMPLAINT = "complaint"
    INVOICE = "invoice"
    ORDER_CHANGE = "order_change"
    """An address or delivery-time change that needs a human (the parcel has left)."""
    GENERAL = "general"


TYPE_LABELS: dict[TicketType, dict[str, str]] = {
    TicketType.REFUND: {"zh": "退款", "en": "refund"},
    TicketType.RETURN_REFUND: {"zh": "退货退款", "en": "return and refund"},
    TicketType.EXCHANGE: {"zh": "换货", "en": "exchange"},
    TicketType.RESEND: {"zh": "补发", "en": "resend"},
    TicketType.COMPENSATION: {"zh": "赔付", "en": "compensation"},
    TicketType.COMPLAINT: {"zh": "投诉", "en": "complaint"},
    TicketType.INVOICE: {"zh": "发票", "en": "invoice"},
    TicketType.ORDER_CHANGE: {"zh": "订单变更", "en": "order change"},
    TicketType.GENERAL: {"zh": "综合咨询", "en": "general"},
}

DECISION_TYPES = frozenset(
    {TicketType.REFUND, TicketType.RETURN_REFUND, TicketType.EXCHANGE, TicketType.RESEND, TicketType.COMPENSATION}
)
"""Money or goods change hands: these need an approval or rejection before they are resolved."""


class TicketStatus(StrEnum):
    NEW = "new"
    """In the to-claim pool (待领取)."""
    CLAIMED = "claimed"
    ASSIGNED = "assigned"
    IN_REVIEW = "in_review"
    PENDING_CUSTOMER = "pending_customer"
    """Waiting for the customer (a photo, an answer): the SLA clock stops."""
    APPROVED = "approved"
    REJECTED = "rejected"
    PROCESSING = "processing"
    """Goods and money moving (pick-up, refund, resend)."""
    RESOLVED = "resolved"
    CLOSED = "closed"


S = TicketStatus
TRANSITIONS: dict[TicketStatus, frozenset[TicketStatus]] = {
    S.NEW: frozenset({S.CLAIMED, S.ASSIGNED, S.APPROVED, S.REJECTED, S.CLOSED}),
    S.CLAIMED: frozenset({S.NEW, S.ASSIGNED, S.IN_REVIEW, S.PENDING_CUSTOMER}),
    S.ASSIGNED: frozenset({S.NEW, S.ASSIGNED, S.IN_REVIEW, S.PENDING_CUSTOMER}),
    S.IN_REVIEW: frozenset({S.NEW, S.ASSIGNED, S.PENDING_CUSTOMER, S.APPROVED, S.REJECTED, S.RESOLVED}),
    S.PENDING_CUSTOMER: frozenset({S.NEW, S.IN_REVIEW, S.ASSIGNED, S.CLOSED}),
    S.APPROVED: frozenset({S.PROCESSING, S.RESOLVED}),
    S.REJECTED: frozenset({S.IN_REVIEW, S.CLOSED}),
    S.PROCESSING: frozenset({S.PENDING_CUSTOMER, S.RESOLVED}),
    S.RESOLVED: frozenset({S.IN_REVIEW, S.CLOSED}),
    S.CLOSED: frozenset(),
}
"""``new → closed`` is for duplicates and spam (a dispatcher's call); ``→ new`` releases a ticket
back to the pool; ``assigned → assigned`` is a transfer; ``resolved → in_review`` a reopening."""

POOL = frozenset({S.NEW})
WITH_STAFF = frozenset({S.CLAIMED, S.ASSIGNED, S.IN_REVIEW, S.APPROVED, S.PROCESSING})
OPEN = frozenset(set(S) - {S.CLOSED})
DONE = frozenset({S.RESOLVED, S.CLOSED})
"""The resolution clock has stopped for good (unless the ticket is reopened)."""
PAUSED = frozenset({S.PENDING_CUSTOMER})
"""The SLA clocks do not run while the ticket waits for the customer."""
CUSTOMER_VISIBLE = frozenset({S.CLAIMED, S.ASSIGNED, S.PENDING_CUSTOMER, S.APPROVED, S.REJECTED, S.RESOLVED})
"""A human moving a ticket into one of these tells the customer, so it counts as a response."""


class TransitionRefused(Conflict):
    """The ticket's status does not allow this move; nothing was changed."""

    code = "invalid_transition"


def check_transition(ticket_type: TicketType, current: TicketStatus, target: TicketStatus) -> None:
    if target not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "none (the ticket is closed)"
        raise TransitionRefused(f"a {current.value} ticket cannot become {target.value} (allowed: {allowed})")
    if target is S.RESOLVED and current is S.IN_REVIEW and ticket_type in DECISION_TYPES:
        raise TransitionRefused(f"a {ticket_type.value} ticket needs an approval or rejection before it is resolved")


STATUS_LABELS: dict[TicketStatus, dict[str, str]] = {
    S.NEW: {"zh": "待领取", "en": "to be claimed"},
    S.CLAIMED: {"zh": "已领取", "en": "claimed"},
    S.ASSIGNED: {"zh": "已分配", "en": "assigned"},
    S.IN_REVIEW: {"zh": "审核中", "en": "in review"},
    S.PENDING_CUSTOMER: {"zh": "待客户补充", "en": "waiting for the customer"},
    S.APPROVED: {"zh": "审核通过", "en": "approved"},
    S.REJECTED: {"zh": "已驳回", "en": "rejected"},
    S.PROCESSING: {"zh": "处理中", "en": "processing"},
    S.RESOLVED: {"zh": "已解决", "en": "resolved"},
    S.CLOSED: {"zh": "已关闭", "en": "closed"},
}

CUSTOMER_STAGES: dict[TicketStatus, dict[str, str]] = {
    S.NEW: {"zh": "已提交", "en": "submitted"},
    S.CLAIMED: {"zh": "专员已受理", "en": "being handled"},
    S.ASSIGNED: {"zh": "专员已受理", "en": "being handled"},
    S.IN_REVIEW: {"zh": "审核中", "en": "in review"},
    S.PENDING_CUSTOMER: {"zh": "待您补充信息", "en": "waiting for your reply"},
    S.APPROVED: {"zh": "审核通过", "en": "approved"},
    S.REJECTED: {"zh": "未通过", "en": "not approved"},
    S.PROCESSING: {"zh": "处理中", "en": "in progress"},
    S.RESOLVED: {"zh": "已解决", "en": "resolved"},
    S.CLOSED: {"zh": "已完结", "en": "closed"},
}
"""Plainer stages for the customer: claimed or assigned is the same to them."""


def label(status: TicketStatus, language: str = "zh", *, customer: bool = False) -> str:
    labels = (CUSTOMER_STAGES if customer else STATUS_LABELS)[status]
    return labels.get(language, labels["zh"])
