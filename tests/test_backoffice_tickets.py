"""The ticket service on the real embedded MongoDB server: opening (classified, routed,
prioritised with reasons, history flags), automatic decisions that move the after-sales request
and tell the customer, load-balanced assignment, the staff workflow with its permission checks,
customer replies, the SLA sweep (reminders, escalation, auto-close and the survey), effects
finished after a crash, and the audit log's tamper checks."""

from __future__ import annotations

import pytest
import pytest_asyncio

from backoffice import Backoffice, TicketStatus, TicketType
from backoffice.lifecycle import TransitionRefused
from backoffice.permissions import PermissionDenied, Role
from backoffice.priority import Priority
from backoffice.workflow import ActionInvalid
from media_ocr.model import OcrResult
from media_ocr.store import OcrResultStore
from shop.aftersales import RequestType, Step
from store.mongo import ConversationStore
from tests.backoffice_support import ZHANG_DELIVERED, ZHANG_PHONE, Clock, contact, make_backoffice, outbox_texts, staff

S = TicketStatus


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest_asyncio.fixture
async def office(store: ConversationStore, clock: Clock) -> Backoffice:
    return await make_backoffice(store, clock)


async def test_a_ticket_is_classified_routed_and_its_priority_explained(office: Backoffice, store: ConversationStore):
    zhang = await contact(store, "鞋盒压扁了", phone=ZHANG_PHONE)
    ticket, created = await office.desk.open(
        type=TicketType.COMPENSATION, customer_id=zhang.customer_id, summary="外箱压扁了，鞋子没坏，想要点补偿",
        conversation_id=zhang.conversation_id, channel="sms", order_id=ZHANG_DELIVERED, reason="破损",
    )  # fmt: skip
    assert created and ticket.status is S.NEW
    assert (ticket.category, ticket.queue) == ("packaging_damage", "logistics")
    assert ticket.customer_tier == "gold" and ticket.skus == ["SKU-SHOE-42"] and ticket.order_amount == 459.0
    factors = {f["factor"]: f for f in ticket.priority_factors}
    assert set(factors) == {"type", "amount", "tier"} and ticket.priority_score == 40
    assert ticket.priority is Priority.NORMAL and "gold customer" in ticket.priority_reasons
    (opened,) = ticket.timeline
    assert opened.kind == "opened" and opened.actor == "system:self_service"
    (logged,) = await office.audit.for_subject(f"ticket:{ticket.id}")
    assert logged.record["entry_id"] == opened.id and logged.record["data"]["to"] == "new"
    alerts = await office.alerts.for_ticket(ticket.id)
    assert [(a.kind, a.audience) for a in alerts] == [("new_ticket", ["queue:logistics"])]
    view = await office.desk.view(ticket, "zh")
    assert view["category_label"] == "包装破损" and view["queue_label"] == "物流组" and view["age"]["text"] == "刚刚"
    assert [c["clock"] for c in view["sla_clocks"]] == ["first_response", "resolution"]


async def test_a_rule_decides_at_once_moves_the_request_and_tells_the_customer(
    office: Backoffice, store: ConversationStore
):
    zhang = await contact(store, "杯子碎了", phone=ZHANG_PHONE)
    assert office.desk.aftersales is not None
    request, _ = await office.desk.aftersales.create(
        type=RequestType.COMPENSATION, order_id=ZHANG_DELIVERED, customer_id=zhang.customer_id, actor="customer",
        amount=20, reason="破损", evidence=["sha256-photo"],
    )  # fmt: skip
    ticket, _ = await office.desk.open(
        type=TicketType.COMPENSATION, customer_id=zhang.customer_id, summary="杯子碎了，要求赔偿20元",
        conversation_id=zhang.conversation_id, channel="sms", order_id=ZHANG_DELIVERED, request_id=request.id,
        reason="破损", evidence=["sha256-photo"],
    )  # fmt: skip
    assert ticket.status is S.PROCESSING and ticket.decision is not None
    assert ticket.decision.by == "system:small_amount_compensation" and "photo evidence" in ticket.decision.explanation
    assert [(e.status, e.actor) for e in ticket.timeline] == [
        (S.NEW, "system:self_service"),
        (S.APPROVED, "system:small_amount_compensation"),
        (S.PROCESSING, "system:after_sales"),
    ]
    moved = await office.desk.aftersales.get(request.id)
    assert moved is not None and moved.ticket_id == ticket.id
    assert [(e.step, e.actor) for e in moved.timeline] == [
        (Step.APPLIED, "customer"),
        (Step.APPROVED, "system:small_amount_compensation"),
        (Step.PAYMENT_PROCESSING, "payment_centre"),
    ]
    (told,) = await outbox_texts(store, zhang.conversation_id)
    assert ticket.id in told and "审核通过" in told and "小额赔付" in told and "20.00" in told
    report = await office.audit.verify()
    assert report.ok, report.problems
    assert report.checked_requests == 1 and report.entries == 3 + 3


async def test_history_flags_a_claim_pattern_and_a_possible_product_defect(
    office: Backoffice, store: ConversationStore
):
    serial = await contact(store)
    tickets = []
    for n in range(3):
        ticket, _ = await office.desk.open(
            type=TicketType.COMPENSATION, customer_id=serial.customer_id, summary="东西坏了", conversation_id=None,
            channel="sms", order_id=f"90000000000{n}", amount=15, evidence=["sha256-x"],
        )  # fmt: skip
        tickets.append(ticket)
    assert "abnormal_claim_pattern" not in tickets[1].flag_kinds()
    third = tickets[2]
    assert "abnormal_claim_pattern" in third.flag_kinds() and third.decision is None  # no automatic payout
    flag = next(f for f in third.flags if f.kind == "abnormal_claim_pattern")
    assert set(flag.related) == {tickets[0].id, tickets[1].id}
    assert tickets[0].status is S.APPROVED  # the first small claim was paid automatically

    defects = []
    for _ in range(3):
        buyer = await contact(store)
        ticket, _ = await office.desk.open(
            type=TicketType.RETURN_REFUND, customer_id=buyer.customer_id, summary="鞋底开胶了，质量太差",
            conversation_id=buyer.conversation_id, channel="sms", order_id=ZHANG_DELIVERED, reason="质量问题",
        )  # fmt: skip
        defects.append(ticket)
    assert "possible_product_defect" not in defects[1].flag_kinds()
    assert "possible_product_defect" in defects[2].flag_kinds()
    earlier = await office.desk.get(defects[0].id)
    assert earlier is not None and "possible_product_defect" in earlier.flag_kinds()


async def test_new_tickets_go_to_the_least_loaded_online_agent_within_capacity(office: Backoffice):
    await staff(office, "a", Role.REVIEWER, skills=("logistics",), capacity=2)
    await staff(office, "b", Role.REVIEWER, skills=("logistics",), capacity=1)
    await staff(office, "c", Role.REVIEWER, skills=("logistics",), capacity=5, online=False)
    await staff(office, "f", Role.REVIEWER, skills=("finance",), capacity=5)
    assignees = []
    for n in range(4):
        ticket, _ = await office.desk.open(
            type=TicketType.RESEND, customer_id=f"c{n}", summary="少发了一件", conversation_id=None, channel="sms",
            order_id=f"80000000000{n}", amount=500,
        )  # fmt: skip
        assignees.append(ticket.assignee)
        assert ticket.queue == "logistics"
    assert assignees == ["a", "b", "a", None]
    waiting = (await office.desk.find({"status": "new"}))[0]
    await office.staff.update("c", online=True)
    report = await office.monitor.sweep()
    assert report.assigned == 1
    fresh = await office.desk.get(waiting.id)
    assert fresh is not None and fresh.assignee == "c" and fresh.status is S.ASSIGNED
    alerts = await office.alerts.for_ticket(waiting.id)
    assert {a.kind for a in alerts} == {"new_ticket", "assigned"}


async def test_the_workflow_checks_roles_and_scope_and_follows_the_customer(
    office: Backoffice, store: ConversationStore
):
    finance, _ = await staff(office, "zhao", Role.REVIEWER, skills=("finance",))
    logistics, _ = await staff(office, "li", Role.REVIEWER, skills=("logistics",))
    dispatcher, _ = await staff(office, "zhou", Role.DISPATCHER)
    front, _ = await staff(office, "liu", Role.CUSTOMER_SERVICE)
    await office.staff.update("zhao", online=False)  # keep the finance queue's ticket in the pool
    buyer = await contact(store, "我要部分退款", phone=ZHANG_PHONE)
    flow = office.workflow
    ticket, _ = await flow.submit(
        front.actor(), customer_id=buyer.customer_id, summary="客户要求部分退款 300 元，鞋面有小瑕疵",
        order_id=ZHANG_DELIVERED, conversation_id=buyer.conversation_id, channel="sms", amount=300,
        type=TicketType.REFUND,
    )  # fmt: skip
    assert ticket.submitted_by == "liu" and ticket.queue == "finance" and ticket.status is S.NEW
    with pytest.raises(PermissionDenied):
        await flow.claim(logistics.actor(), ticket.id)
    with pytest.raises(PermissionDenied, match="claim it first"):
        await flow.move(finance.actor(), ticket.id, S.IN_REVIEW)
    with pytest.raises(PermissionDenied):
        await flow.assign(front.actor(), ticket.id, "zhao", reason="x")
    claimed = await flow.claim(finance.actor(), ticket.id)
    assert claimed.assignee == "zhao" and claimed.status is S.CLAIMED
    with pytest.raises(TransitionRefused):
        await flow.claim(dispatcher.actor(), ticket.id)
    await flow.move(finance.actor(), ticket.id, S.IN_REVIEW)
    with pytest.raises(ActionInvalid):
        await flow.move(finance.actor(), ticket.id, S.PENDING_CUSTOMER)
    waiting = await flow.move(finance.actor(), ticket.id, S.PENDING_CUSTOMER, note="请拍一张色差的照片")
    assert waiting.sla.pauses and waiting.sla.pauses[-1].end is None and waiting.sla.first_response_at is not None
    conversation = await store.get_conversation(buyer.conversation_id)
    assert conversation is not None and set(conversation.awaiting["tickets"]) == {ticket.id}  # what a turn asks by
    (resumed,) = await office.desk.customer_replied(
        buyer.conversation_id, conversation.awaiting["tickets"], ["sha256-colour"]
    )
    assert resumed.status is S.IN_REVIEW and "sha256-colour" in resumed.evidence and resumed.sla.pauses[-1].end
    conversation = await store.get_conversation(buyer.conversation_id)
    assert conversation is not None and conversation.awaiting["tickets"] == {}  # answered: no longer asked about
    # A flag set for a write that has not landed (or died before it) stays until that version exists.
    await store.flag_awaiting([buyer.conversation_id], "tickets", ticket.id, 1_000)
    assert await office.desk.customer_replied(buyer.conversation_id, {ticket.id: 1_000}) == []
    conversation = await store.get_conversation(buyer.conversation_id)
    assert conversation is not None and conversation.awaiting["tickets"] == {ticket.id: 1_000}
    await store.clear_awaiting(buyer.conversation_id, "tickets", ticket.id, 1_000)
    with pytest.raises(ActionInvalid, match="between 0"):
        await flow.move(finance.actor(), ticket.id, S.APPROVED, amount=9999)
    with pytest.raises(ActionInvalid, match="reason"):
        await flow.move(finance.actor(), ticket.id, S.REJECTED)
    approved = await flow.move(finance.actor(), ticket.id, S.APPROVED, reason="色差属实", amount=80)
    assert approved.decision is not None and approved.decision.by == "staff:zhao" and approved.amount == 80
    with pytest.raises(PermissionDenied):
        await flow.comment(logistics.actor(), ticket.id, "我来回复", public=True)
    await flow.comment(finance.actor(), ticket.id, "退款已提交支付中心", public=False)
    await flow.comment(finance.actor(), ticket.id, "您好，80 元退款已提交，请留意到账。", public=True)
    with pytest.raises(TransitionRefused):
        await flow.move(finance.actor(), ticket.id, S.APPROVED)
    # an agent's money ticket is decided on an after-sales request: approving starts the refund
    assert approved.request_id and approved.status is S.PROCESSING
    done = await flow.move(finance.actor(), ticket.id, S.RESOLVED, note="退款已到账")
    assert done.sla.resolved_at is not None
    closed = await flow.move(dispatcher.actor(), ticket.id, S.CLOSED, reason="客户确认")
    assert closed.status is S.CLOSED
    told = await outbox_texts(store, buyer.conversation_id)
    assert any("色差的照片" in t for t in told) and any("审核通过" in t and "80.00" in t for t in told)
    assert any(t.startswith("您好，80 元退款已提交") for t in told)
    assert not any("支付中心" in t for t in told)  # the internal note stays internal
    assert "1-5分" in told[-1]  # the survey
    survey = await office.surveys.for_ticket(ticket.id)
    assert survey is not None and survey.agent == "zhao" and survey.stage == "csat"
    # A new problem of the same kind now opens a new ticket: the closed one freed its key.
    again, created = await flow.submit(
        front.actor(), customer_id=buyer.customer_id, summary="又有问题", order_id=ZHANG_DELIVERED,
        type=TicketType.REFUND,
    )  # fmt: skip
    assert created and again.id != ticket.id
    report = await office.audit.verify()
    assert report.ok, report.problems


async def test_photos_read_in_the_conversation_are_linked_to_its_ticket(office: Backoffice, store: ConversationStore):
    buyer = await contact(store, "退货单拍给你们了")
    slip = await OcrResultStore(store.db).insert(
        OcrResult(image="slip.jpg", media_id="sha256-slip", fields={"order_id": ZHANG_DELIVERED, "quantity": 1},
                  confidence={"order_id": 0.97, "quantity": 0.9}, needs_review=False, engine="rapidocr",
                  source={"channel": "sms", "conversation_id": buyer.conversation_id})
    )  # fmt: skip
    ticket, _ = await office.desk.open(
        type=TicketType.RETURN_REFUND, customer_id=buyer.customer_id, summary="超过七天的退货，单据已拍照",
        conversation_id=buyer.conversation_id, channel="sms", order_id=ZHANG_DELIVERED,
    )  # fmt: skip
    assert ticket.ocr_result_ids == [slip.id]


async def test_a_repeat_contact_joins_the_open_ticket_and_reopens_a_resolved_one(office: Backoffice):
    first, created = await office.desk.open(
        type=TicketType.COMPLAINT, customer_id="c1", summary="快递员态度很差", conversation_id="k1", channel="sms",
    )  # fmt: skip
    joined, created_again = await office.desk.open(
        type=TicketType.COMPLAINT, customer_id="c1", summary="还是没人理我", conversation_id="k2", channel="telegram",
    )  # fmt: skip
    assert created and not created_again and joined.id == first.id and joined.contacts == 2
    assert joined.channels == ["sms", "telegram"] and joined.priority is Priority.HIGH
    assert joined.timeline[-1].kind == "contact"


async def test_the_sweep_reminds_escalates_and_closes(office: Backoffice, clock: Clock, store: ConversationStore):
    buyer = await contact(store, "投诉")
    ticket, _ = await office.desk.open(
        type=TicketType.COMPLAINT, customer_id=buyer.customer_id, summary="客服态度很差，一直推脱",
        conversation_id=buyer.conversation_id, channel="sms",
    )  # fmt: skip
    assert ticket.priority is Priority.NORMAL and ticket.queue == "complaints"  # first response in 240 min
    clock.advance(minutes=200)
    report = await office.monitor.sweep()
    assert report.warnings == 1 and report.escalations == 0
    assert (await office.monitor.sweep()).warnings == 0  # said once
    clock.advance(minutes=45)
    report = await office.monitor.sweep()
    assert report.escalations == 1
    escalated = await office.desk.get(ticket.id)
    assert escalated is not None and escalated.sla.escalated and escalated.priority is Priority.HIGH
    assert escalated.timeline[-1].kind == "escalation" and "SLA breached" in escalated.priority_reasons
    assert (await office.monitor.sweep()).escalations == 0
    kinds = [a.kind for a in await office.alerts.for_ticket(ticket.id)]
    assert sorted(kinds) == ["escalated", "new_ticket", "sla_breached", "sla_warning"]
    breach = next(a for a in await office.alerts.for_ticket(ticket.id) if a.kind == "sla_breached")
    assert "role:dispatcher" in breach.audience

    reviewer, _ = await staff(office, "chen", Role.REVIEWER, skills=("complaints",))
    await office.workflow.claim(reviewer.actor(), ticket.id)
    await office.workflow.move(reviewer.actor(), ticket.id, S.IN_REVIEW)
    await office.workflow.move(reviewer.actor(), ticket.id, S.RESOLVED, note="已向客户致歉并补偿优惠券")
    clock.advance(hours=73)
    report = await office.monitor.sweep()
    assert report.closed == 1
    closed = await office.desk.get(ticket.id)
    assert closed is not None and closed.status is S.CLOSED and closed.timeline[-1].actor == "system:auto_close"
    assert closed.survey_id is not None
    assert "1-5分" in (await outbox_texts(store, buyer.conversation_id))[-1]


async def test_effects_a_crash_left_undone_are_finished_once_by_the_sweep(
    office: Backoffice, clock: Clock, store: ConversationStore
):
    buyer = await contact(store)
    reviewer, _ = await staff(office, "li", Role.REVIEWER, skills=("logistics",), online=False)
    ticket, _ = await office.desk.open(
        type=TicketType.RESEND, customer_id=buyer.customer_id, summary="少发一件",
        conversation_id=buyer.conversation_id, channel="sms", order_id="700000000001", amount=300,
    )  # fmt: skip
    await office.workflow.claim(reviewer.actor(), ticket.id)
    await office.workflow.move(reviewer.actor(), ticket.id, S.IN_REVIEW)

    real_record = office.audit.record

    async def crash(**kwargs: object) -> None:
        raise RuntimeError("the process died here")

    office.audit.record = crash  # type: ignore[method-assign,assignment]
    with pytest.raises(RuntimeError):
        await office.workflow.move(reviewer.actor(), ticket.id, S.PENDING_CUSTOMER, note="请发照片")
    office.audit.record = real_record  # type: ignore[method-assign]
    stored = await office.desk.get(ticket.id)
    assert stored is not None and stored.status is S.PENDING_CUSTOMER  # the change itself was kept
    assert (await office.audit.verify()).ok  # pending, not missing
    assert not any("请发照片" in t for t in await outbox_texts(store, buyer.conversation_id))
    assert (await office.monitor.sweep()).effects_finished == 0  # the writer may still be at it
    clock.advance(seconds=11)
    assert (await office.monitor.sweep()).effects_finished == 1
    assert (await office.monitor.sweep()).effects_finished == 0
    told = [t for t in await outbox_texts(store, buyer.conversation_id) if "请发照片" in t]
    assert len(told) == 1
    report = await office.audit.verify()
    assert report.ok and report.entries == 4


async def test_audit_verify_finds_edited_and_deleted_entries(office: Backoffice, store: ConversationStore):
    reviewer, _ = await staff(office, "zhao", Role.REVIEWER, skills=("finance",), online=False)
    ticket, _ = await office.desk.open(
        type=TicketType.REFUND, customer_id="c9", summary="退款", conversation_id=None, channel="rest",
        order_id="600000000001", amount=500,
    )  # fmt: skip
    await office.workflow.claim(reviewer.actor(), ticket.id)
    await office.workflow.move(reviewer.actor(), ticket.id, S.IN_REVIEW)
    await office.workflow.move(reviewer.actor(), ticket.id, S.APPROVED, reason="ok")
    clean = await office.audit.verify()
    assert clean.ok and clean.entries == 4
    ledger = store.db["ledger"]

    await ledger.update_one({"_id": "audit:000000000004"}, {"$set": {"record.actor": "staff:someone_else"}})
    edited = await office.audit.verify()
    assert not edited.ok and any("entry 4 was changed" in p for p in edited.problems)
    await ledger.update_one({"_id": "audit:000000000004"}, {"$set": {"record.actor": "staff:zhao"}})
    assert (await office.audit.verify()).ok

    middle = await ledger.find_one({"_id": "audit:000000000002"})
    await ledger.delete_one({"_id": "audit:000000000002"})
    gap = await office.audit.verify()
    assert not gap.ok and any("missing" in p for p in gap.problems)
    assert middle is not None
    await ledger.insert_one(middle)

    last = await ledger.find_one({"_id": "audit:000000000004"})
    await ledger.delete_one({"_id": "audit:000000000004"})
    cut = await office.audit.verify(expected_head=clean.head)
    assert not cut.ok
    assert any("has no audit entry" in p for p in cut.problems)  # the ticket still has the step
    assert any("published head" in p for p in cut.problems)
    assert last is not None
    await ledger.insert_one(last)

    doc = await store.db["tickets"].find_one({"_id": ticket.id})
    assert doc is not None
    timeline = doc["timeline"]
    timeline[-1]["actor"] = "staff:someone_else"
    await store.db["tickets"].update_one({"_id": ticket.id}, {"$set": {"timeline": timeline}})
    forged = await office.audit.verify()
    assert not forged.ok and any("differs from audit entry" in p for p in forged.problems)


async def test_a_caller_hears_of_their_ticket_by_sms(office: Backoffice, store: ConversationStore):
    office.notifier.relay = {"voice": "sms"}
    caller = await contact(store, "我要投诉", phone="+8613912345678", channel="voice")
    reviewer, _ = await staff(office, "chen", Role.REVIEWER, skills=("complaints",))
    ticket, _ = await office.desk.open(
        type=TicketType.COMPLAINT, customer_id=caller.customer_id, summary="客服态度差",
        conversation_id=caller.conversation_id, channel="voice",
    )  # fmt: skip
    await office.workflow.claim(reviewer.actor(), ticket.id)
    sms = await store.conversations.find_one({"channel": "sms", "sender_id": "+8613912345678"})
    assert sms is not None and sms["customer_id"] == caller.customer_id
    (notice,) = await outbox_texts(store, str(sms["_id"]))
    assert "已由专员受理" in notice
    assert await outbox_texts(store, caller.conversation_id) == []
