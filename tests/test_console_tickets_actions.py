"""What the ticket page offers each role (``allowed_actions``): pure checks over roles, queues and
the life cycle."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from backoffice.lifecycle import TicketStatus, TicketType
from backoffice.permissions import Actor, Role
from backoffice.priority import Priority
from backoffice.ticket_record import Ticket
from backoffice.workflow import ACTIONS, allowed_actions
from console.live import change_event

AT = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
S = TicketStatus


def ticket(
    status: TicketStatus = S.NEW,
    *,
    type: TicketType = TicketType.COMPENSATION,
    queue: str = "product",
    assignee: str | None = None,
    submitted_by: str | None = None,
    conversation: bool = True,
) -> Ticket:
    return Ticket(
        id="T1", type=type, status=status, queue=queue, assignee=assignee, submitted_by=submitted_by,
        priority=Priority.NORMAL, customer_id="c1", summary="杯子有裂痕",
        conversation_ids=["conv1"] if conversation else [], timeline=[], created_at=AT, updated_at=AT,
    )  # fmt: skip


REVIEWER = Actor("wang", frozenset({Role.REVIEWER}), frozenset({"product"}))
OTHER_QUEUE = Actor("li", frozenset({Role.REVIEWER}), frozenset({"logistics"}))
DISPATCHER = Actor("zhou", frozenset({Role.DISPATCHER}))
FRONT = Actor("liu", frozenset({Role.CUSTOMER_SERVICE}))
ADMIN = Actor("root", frozenset({Role.ADMIN}))
QUALITY = Actor("qa", frozenset({Role.QUALITY}))


def test_a_reviewer_of_the_queue_may_claim_a_pool_ticket_but_not_decide_it_yet() -> None:
    assert allowed_actions(REVIEWER, ticket()) == ["claim", "comment", "attach"]


def test_the_holding_reviewer_moves_it_through_review() -> None:
    claimed = ticket(S.CLAIMED, assignee="wang")
    assert allowed_actions(REVIEWER, claimed) == ["release", "in_review", "pending_customer", "comment", "reply",
                                                  "attach"]  # fmt: skip
    in_review = allowed_actions(REVIEWER, ticket(S.IN_REVIEW, assignee="wang"))
    # a compensation needs a decision: resolving straight from review is not offered
    assert [a for a in in_review if a in {s.value for s in S}] == ["pending_customer", "approved", "rejected"]
    general = allowed_actions(REVIEWER, ticket(S.IN_REVIEW, type=TicketType.GENERAL, assignee="wang"))
    assert "resolved" in general and "approved" in general
    approved = allowed_actions(REVIEWER, ticket(S.APPROVED, assignee="wang"))
    assert [a for a in approved if a in {s.value for s in S}] == ["processing", "resolved"]
    resolved = allowed_actions(REVIEWER, ticket(S.RESOLVED, assignee="wang"))
    assert "closed" in resolved and "in_review" in resolved


def test_another_reviewer_of_the_same_queue_sees_the_held_ticket_but_cannot_act_on_it() -> None:
    colleague = Actor("zhang", frozenset({Role.REVIEWER}), frozenset({"product"}))
    assert allowed_actions(colleague, ticket(S.IN_REVIEW, assignee="wang")) == ["comment", "attach"]


def test_a_reviewer_of_another_queue_gets_nothing() -> None:
    assert allowed_actions(OTHER_QUEUE, ticket()) == []
    assert allowed_actions(OTHER_QUEUE, ticket(S.IN_REVIEW, assignee="wang")) == []


def test_a_dispatcher_routes_but_never_decides() -> None:
    pool = allowed_actions(DISPATCHER, ticket())
    assert pool == ["claim", "assign", "transfer", "closed", "comment", "reply", "attach"]
    held = allowed_actions(DISPATCHER, ticket(S.IN_REVIEW, assignee="wang"))
    assert {"release", "assign", "transfer", "comment", "reply"} <= set(held)
    assert not {"approved", "rejected", "pending_customer", "in_review"} & set(held)


def test_customer_service_sees_what_it_submitted_and_may_answer_but_not_approve() -> None:
    submitted = ticket(S.IN_REVIEW, assignee="wang", submitted_by="liu")
    assert allowed_actions(FRONT, submitted) == ["comment", "reply", "attach"]
    assert allowed_actions(FRONT, ticket(S.IN_REVIEW, assignee="wang")) == []  # not theirs: not visible


def test_admins_and_quality_read_but_do_not_work_tickets() -> None:
    assert allowed_actions(ADMIN, ticket(S.IN_REVIEW, assignee="wang")) == []
    assert allowed_actions(QUALITY, ticket()) == []


def test_no_reply_without_a_conversation_and_nothing_but_notes_on_a_closed_ticket() -> None:
    assert "reply" not in allowed_actions(REVIEWER, ticket(S.CLAIMED, assignee="wang", conversation=False))
    assert allowed_actions(DISPATCHER, ticket(S.CLOSED, assignee="wang")) == ["comment", "reply", "attach"]


@pytest.mark.parametrize("status", list(S))
def test_every_offer_is_a_known_action(status: TicketStatus) -> None:
    for actor in (REVIEWER, DISPATCHER, FRONT):
        offered = allowed_actions(actor, ticket(status, assignee="wang", submitted_by="liu"))
        assert set(offered) <= set(ACTIONS)


def test_a_ticket_change_is_a_ticket_event_whatever_the_ticket_type() -> None:
    change = {
        "operationType": "update",
        "documentKey": {"_id": "T1"},
        "fullDocument": {"_id": "T1", "type": "compensation", "status": "claimed", "queue": "product",
                         "assignee": "wang", "version": 3},
    }  # fmt: skip
    event = change_event("tickets", change)
    assert event is not None
    assert (event["type"], event["ticket_type"], event["status"], event["version"]) == (
        "ticket", "compensation", "claimed", 3,
    )  # fmt: skip
