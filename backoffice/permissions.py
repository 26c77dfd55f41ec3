"""Who may do what with tickets: roles, their permissions, and the scope rules (a reviewer sees
and reviews only their own queues). Enforced by the ticket workflow, so every API route gets it.

Pure functions over the staff member and the ticket; no storage, no HTTP.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from errors import Forbidden


class Role(StrEnum):
    CUSTOMER_SERVICE = "customer_service"
    """Front-line service: submits tickets for customers, sees what they submitted."""
    REVIEWER = "reviewer"
    """Reviews and decides tickets in their own queues (skill groups)."""
    DISPATCHER = "dispatcher"
    """Assigns, transfers and claims tickets in every queue."""
    ADMIN = "admin"
    """Configures queues, skills, rules, SLAs and users."""
    QUALITY = "quality"
    """Quality team (质检): reads the dashboards and scores bot answers and agents' corrections."""


class Permission(StrEnum):
    SUBMIT = "submit"
    VIEW_ALL = "view_all"
    VIEW_OWN_QUEUES = "view_own_queues"
    CLAIM_OWN_QUEUES = "claim_own_queues"
    CLAIM_ANY = "claim_any"
    ASSIGN = "assign"
    TRANSFER = "transfer"
    REVIEW = "review"
    COMMENT = "comment"
    REPLY_CUSTOMER = "reply_customer"
    CONFIGURE = "configure"
    MANAGE_USERS = "manage_users"
    VIEW_AUDIT = "view_audit"
    HANDLE_CONVERSATIONS = "handle_conversations"
    """Take waiting conversations, answer customers, transfer and close them."""
    VIEW_QUALITY = "view_quality"
    """The quality dashboard, the refund report and their CSV exports."""
    SCORE_QUALITY = "score_quality"
    """Score bot answers and agents' corrections in the review queue."""


P = Permission
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.CUSTOMER_SERVICE: frozenset({P.SUBMIT, P.COMMENT, P.REPLY_CUSTOMER, P.HANDLE_CONVERSATIONS}),
    Role.REVIEWER: frozenset({P.VIEW_OWN_QUEUES, P.CLAIM_OWN_QUEUES, P.REVIEW, P.COMMENT, P.REPLY_CUSTOMER}),
    Role.DISPATCHER: frozenset(
        {P.SUBMIT, P.VIEW_ALL, P.CLAIM_ANY, P.ASSIGN, P.TRANSFER, P.COMMENT, P.REPLY_CUSTOMER}
        | {P.HANDLE_CONVERSATIONS, P.VIEW_QUALITY}
    ),
    Role.ADMIN: frozenset({P.VIEW_ALL, P.CONFIGURE, P.MANAGE_USERS, P.VIEW_AUDIT, P.VIEW_QUALITY}),
    Role.QUALITY: frozenset({P.VIEW_QUALITY, P.SCORE_QUALITY}),
}


class PermissionDenied(Forbidden):
    """The staff member's roles do not allow this; nothing was changed."""


@dataclass(frozen=True, slots=True)
class Actor:
    """A signed-in staff member as the permission rules see them."""

    id: str
    roles: frozenset[Role]
    skill_groups: frozenset[str] = frozenset()

    @property
    def name(self) -> str:
        return f"staff:{self.id}"

    def permissions(self) -> frozenset[Permission]:
        granted: set[Permission] = set()
        for role in self.roles:
            granted |= ROLE_PERMISSIONS[role]
        return frozenset(granted)

    def has(self, permission: Permission) -> bool:
        return permission in self.permissions()

    def require(self, permission: Permission, what: str) -> None:
        if not self.has(permission):
            roles = ", ".join(sorted(r.value for r in self.roles)) or "none"
            raise PermissionDenied(f"{what} needs the {permission.value} permission (your roles: {roles})")


@dataclass(frozen=True, slots=True)
class TicketScope:
    """The parts of a ticket the scope rules look at."""

    queue: str
    assignee: str | None
    submitted_by: str | None


def can_view(actor: Actor, ticket: TicketScope) -> bool:
    if actor.has(P.VIEW_ALL):
        return True
    if ticket.assignee == actor.id or ticket.submitted_by == actor.id:
        return True
    return actor.has(P.VIEW_OWN_QUEUES) and ticket.queue in actor.skill_groups


def can_claim(actor: Actor, ticket: TicketScope) -> bool:
    if actor.has(P.CLAIM_ANY):
        return True
    return actor.has(P.CLAIM_OWN_QUEUES) and ticket.queue in actor.skill_groups


def can_review(actor: Actor, ticket: TicketScope) -> bool:
    """Decisions belong to the reviewer who holds the ticket: claim it (or be assigned) first."""
    return actor.has(P.REVIEW) and ticket.assignee == actor.id


def can_reply(actor: Actor, ticket: TicketScope) -> bool:
    """Answering the customer: the ticket's holder, its submitter, or a dispatcher."""
    if not actor.has(P.REPLY_CUSTOMER):
        return False
    return ticket.assignee == actor.id or ticket.submitted_by == actor.id or actor.has(P.VIEW_ALL)


def can_read_photo(
    actor: Actor, *, uploaded_by: str | None, customers_photo: bool, tickets: Iterable[TicketScope]
) -> bool:
    """A photo's reading (customers' parcels, labels, invoices): whoever uploaded it, agents for
    a photo a customer sent (in a conversation or for a request: agents see both), and whoever may
    view a ticket it belongs to."""
    if actor.has(P.VIEW_ALL) or (uploaded_by is not None and uploaded_by == actor.id):
        return True
    if customers_photo and actor.has(P.HANDLE_CONVERSATIONS):
        return True
    return any(can_view(actor, ticket) for ticket in tickets)


def visible_queues(actor: Actor, all_queues: Iterable[str]) -> list[str]:
    if actor.has(P.VIEW_ALL):
        return list(all_queues)
    if actor.has(P.VIEW_OWN_QUEUES):
        return [q for q in all_queues if q in actor.skill_groups]
    return []
