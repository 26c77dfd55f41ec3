"""The backoffice's pure rules: life cycle, classification of look-alike cases, priority with
reasons, business hours and SLA clocks, automatic-decision rules, permissions, configuration
validation and load-balanced assignment."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from backoffice.assignment import AgentLoad, pick_agent
from backoffice.classify import classify, damage_kind
from backoffice.config import ConfigInvalid, load_default, validate
from backoffice.decisions import DecisionFacts, decide
from backoffice.lifecycle import TicketStatus, TicketType, TransitionRefused, check_transition
from backoffice.permissions import Actor, PermissionDenied, Role, TicketScope, can_claim, can_review, can_view
from backoffice.priority import Priority, PriorityInputs, assess, waiting_factor
from backoffice.sla import BusinessHours, SlaFacts, Targets, clocks, format_duration

S = TicketStatus
SHANGHAI = "Asia/Shanghai"


def cst(day: int, hour: int, minute: int = 0) -> datetime:
    """A time in Shanghai on a day of December 2026 (1 December is a Tuesday)."""
    return datetime(2026, 12, day, hour, minute, tzinfo=ZoneInfo(SHANGHAI)).astimezone(UTC)


def office_hours(**extra: object) -> BusinessHours:
    weekday = ((time(9), time(18)),)
    return BusinessHours(SHANGHAI, (weekday,) * 5 + ((), ()), **extra)  # type: ignore[arg-type]


# -- life cycle -------------------------------------------------------------------------------


def test_the_life_cycle_allows_the_documented_path_and_refuses_shortcuts() -> None:
    path = [
        S.NEW,
        S.CLAIMED,
        S.IN_REVIEW,
        S.PENDING_CUSTOMER,
        S.IN_REVIEW,
        S.APPROVED,
        S.PROCESSING,
        S.RESOLVED,
        S.CLOSED,
    ]
    for current, target in itertools.pairwise(path):
        check_transition(TicketType.REFUND, current, target)
    for current, target in [
        (S.NEW, S.RESOLVED),
        (S.CLOSED, S.IN_REVIEW),
        (S.APPROVED, S.REJECTED),
        (S.NEW, S.PROCESSING),
    ]:
        with pytest.raises(TransitionRefused):
            check_transition(TicketType.REFUND, current, target)


def test_money_tickets_need_a_decision_but_a_complaint_can_be_resolved_after_review() -> None:
    with pytest.raises(TransitionRefused, match="approval or rejection"):
        check_transition(TicketType.REFUND, S.IN_REVIEW, S.RESOLVED)
    check_transition(TicketType.COMPLAINT, S.IN_REVIEW, S.RESOLVED)


# -- classification -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("外箱压扁了，东西没坏", "packaging_damage"),
        ("包装破损了，里面的东西还好", "packaging_damage"),
        ("纸箱都破了", "packaging_damage"),
        ("外包装破损，商品完好", "packaging_damage"),
        ("The box was crushed but the item is fine", "packaging_damage"),
        ("包装完好但是里面的碗碎了", "product_damage"),
        ("外箱破了，里面的杯子也碎了", "product_damage"),
        ("盒子里的杯子裂了", "product_damage"),
        ("杯子摔坏了", "product_damage"),
        ("The box was fine but the mug is cracked", "product_damage"),
        ("快递太慢了，一直不动", None),
    ],
)
def test_product_damage_is_told_apart_from_packaging_damage(text: str, expected: str | None) -> None:
    assert damage_kind(text)[0] == expected


def test_classification_keeps_a_declared_type_and_names_its_cues() -> None:
    found = classify(text="外箱压扁了，东西没坏", declared_type=TicketType.COMPENSATION, reason="破损")
    assert (found.type, found.category) == (TicketType.COMPENSATION, "packaging_damage")
    assert found.label("zh") == "包装破损" and any(c.startswith("text:") for c in found.cues)
    assert classify(text="杯子碎了", reason="破损").category == "product_damage"


def test_classification_from_intents_and_words_when_no_type_is_declared() -> None:
    by_intent = classify(text="我想问问这个怎么办", intents=["greet", "return_refund"])
    assert by_intent.type is TicketType.RETURN_REFUND and "intent:return_refund" in by_intent.cues
    by_words = classify(text="收到的牛奶发霉了，孩子喝了拉肚子")
    assert (by_words.type, by_words.category) == (TicketType.COMPLAINT, "food_safety")
    assert classify(text="衣服质量太差，开线了").category == "quality"
    assert classify(text="发票抬头开错了").type is TicketType.INVOICE
    assert classify(text="随便说说").type is TicketType.GENERAL


# -- priority -----------------------------------------------------------------------------------


def test_food_safety_and_high_value_come_first_and_every_point_is_explained() -> None:
    food = assess(PriorityInputs(type=TicketType.COMPLAINT, food_safety=True))
    big = assess(PriorityInputs(type=TicketType.REFUND, amount=2599))
    plain = assess(PriorityInputs(type=TicketType.RESEND))
    vip = assess(PriorityInputs(type=TicketType.REFUND, amount=500, customer_tier="vip", urges=1))
    assert food.level is Priority.URGENT and "food safety" in food.reasons
    assert big.level is Priority.HIGH and big.reasons == ["high value order (2599.00)"]
    assert plain.level is Priority.NORMAL and plain.reasons == ["standard"]
    assert vip.level is Priority.HIGH and {f.factor for f in vip.factors} == {"type", "amount", "tier", "urged"}
    assert food.score == sum(f.points for f in food.factors)


def test_waiting_time_adds_points_up_to_a_cap() -> None:
    assert waiting_factor(0.2) is None
    factor = waiting_factor(3)
    assert factor is not None and factor.points == 6
    capped = waiting_factor(100)
    assert capped is not None and capped.points == 30


# -- business hours and clocks ------------------------------------------------------------------


def test_business_seconds_skip_nights_weekends_and_holidays() -> None:
    hours = office_hours()
    # Tuesday 17:00 → Wednesday 10:00 is one business hour before closing plus one after opening.
    assert hours.seconds_between(cst(1, 17), cst(2, 10)) == 2 * 3600
    # Friday 4 December 17:00 → Monday 7 December 10:00: the weekend does not count.
    assert hours.seconds_between(cst(4, 17), cst(7, 10)) == 2 * 3600
    holiday = office_hours(holidays=frozenset({date(2026, 12, 7)}))
    assert holiday.seconds_between(cst(4, 17), cst(8, 10)) == 2 * 3600
    assert hours.seconds_between(cst(2, 10), cst(1, 17)) == 0


def test_adding_business_time_lands_on_the_next_open_hour() -> None:
    hours = office_hours()
    assert hours.add(cst(4, 17), 2 * 3600) == cst(7, 10)  # Friday 17:00 + 2 h = Monday 10:00
    assert hours.add(cst(5, 12), 60) == cst(7, 9, 1)  # from a Saturday
    workday = office_hours(workdays=frozenset({date(2026, 12, 5)}))
    assert workday.add(cst(5, 12), 60) == cst(5, 12, 1)  # a make-up Saturday is worked
    assert BusinessHours.always().seconds_between(cst(1, 0), cst(2, 0)) == 86400


def test_clocks_warn_breach_pause_and_stop() -> None:
    hours = office_hours()
    targets = Targets(first_response=60, next_response=30, resolution=480)
    created = cst(1, 9)
    running = clocks(SlaFacts(created_at=created), targets, hours, cst(1, 9, 30))
    assert [c.state for c in running] == ["running", "running"]
    assert running[0].due_at == cst(1, 10)
    warning = clocks(SlaFacts(created_at=created), targets, hours, cst(1, 9, 50))
    assert warning[0].state == "warning"
    breached = clocks(SlaFacts(created_at=created), targets, hours, cst(1, 11))
    assert breached[0].state == "breached" and breached[0].remaining_seconds == -3600
    met = clocks(SlaFacts(created_at=created, first_response_at=cst(1, 9, 40), awaiting_since=cst(1, 12)),
                 targets, hours, cst(1, 12, 10))  # fmt: skip
    assert [(c.name, c.state) for c in met] == [
        ("first_response", "met"), ("next_response", "running"), ("resolution", "running")
    ]  # fmt: skip
    # Waiting for the customer from 10:00 to 16:00 does not use the resolution target.
    paused = clocks(
        SlaFacts(created_at=created, first_response_at=cst(1, 9, 30), pauses=((cst(1, 10), cst(1, 16)),)),
        targets, hours, cst(1, 17),
    )  # fmt: skip
    assert paused[-1].name == "resolution" and paused[-1].elapsed_seconds == 2 * 3600
    still = clocks(SlaFacts(created_at=created, pauses=((cst(1, 9, 30), None),)), targets, hours, cst(2, 15))
    assert still[0].state == "paused" and still[0].elapsed_seconds == 1800


def test_ages_read_at_a_glance() -> None:
    assert format_duration(8100, "zh") == "2小时15分钟"
    assert format_duration(3 * 86400 + 7200, "zh") == "3天2小时"
    assert format_duration(20, "zh") == "刚刚"
    assert format_duration(8100, "en") == "2 h 15 min"


# -- automatic decisions ------------------------------------------------------------------------


def test_rules_decide_only_when_every_condition_holds() -> None:
    rules = load_default("rules")
    small = DecisionFacts(
        type=TicketType.COMPENSATION, category="packaging_damage", amount=20, has_evidence=True, claims_in_window=0
    )
    decision = decide(rules, small)  # type: ignore[arg-type]
    assert decision is not None and decision.rule == "small_amount_compensation" and decision.outcome == "approve"
    assert "photo evidence" in decision.explanation
    assert decide(rules, DecisionFacts(type=TicketType.COMPENSATION, category="packaging_damage", amount=20)) is None  # type: ignore[arg-type]
    flagged = DecisionFacts(type=TicketType.COMPENSATION, category="product_damage", amount=20, has_evidence=True,
                            flags=["abnormal_claim_pattern"])  # fmt: skip
    assert decide(rules, flagged) is None  # type: ignore[arg-type]
    trusted = DecisionFacts(type=TicketType.REFUND, category="other", amount=150, customer_tier="Gold")
    assert (decide(rules, trusted) or pytest.fail()).rule == "lightning_refund_trusted"  # type: ignore[arg-type]
    return_facts = DecisionFacts(type=TicketType.RETURN_REFUND, category="no_reason", amount=300, days_since_delivery=3,
                                 item_categories=["fresh"])  # fmt: skip
    assert decide(rules, return_facts) is None  # type: ignore[arg-type]


# -- permissions --------------------------------------------------------------------------------


def test_reviewers_see_and_decide_only_their_own_queues() -> None:
    reviewer = Actor("li", frozenset({Role.REVIEWER}), frozenset({"logistics"}))
    dispatcher = Actor("zhou", frozenset({Role.DISPATCHER}))
    admin = Actor("root", frozenset({Role.ADMIN}))
    front = Actor("liu", frozenset({Role.CUSTOMER_SERVICE}))
    pool_logistics = TicketScope("logistics", None, None)
    pool_finance = TicketScope("finance", None, "liu")
    assert can_view(reviewer, pool_logistics) and not can_view(reviewer, pool_finance)
    assert can_claim(reviewer, pool_logistics) and not can_claim(reviewer, pool_finance)
    assert not can_review(reviewer, pool_logistics)  # claim it first
    assert can_review(reviewer, TicketScope("logistics", "li", None))
    assert can_view(dispatcher, pool_finance) and can_claim(dispatcher, pool_finance)
    assert not can_review(dispatcher, TicketScope("finance", "zhou", None))
    assert can_view(front, pool_finance) and not can_view(front, pool_logistics)
    with pytest.raises(PermissionDenied, match="configure"):
        reviewer.require(next(p for p in admin.permissions() if p.value == "configure"), "changing SLAs")


# -- configuration ------------------------------------------------------------------------------


def test_the_shipped_configuration_is_valid_and_bad_edits_name_the_field() -> None:
    sla = load_default("sla")
    assert sla.targets_for(TicketType.COMPLAINT, Priority.NORMAL).first_response == 240  # type: ignore[attr-defined]
    with pytest.raises(ConfigInvalid) as bad_queue:
        validate("tickets", {"queues": {"a": {}}, "routing": {"default_queue": "b"}})
    assert "default_queue" in str(bad_queue.value)
    with pytest.raises(ConfigInvalid) as bad_hours:
        validate("sla", {**sla.model_dump(mode="json"), "business_hours": {"days": {"mon": "9-18"}}})
    assert "business_hours.days" in str(bad_hours.value)
    with pytest.raises(ConfigInvalid) as unknown_condition:
        validate("rules", {"rules": [{"id": "x1", "when": {"colour": "red"}, "decide": "approve"}]})
    assert "rules.0.when.colour" in str(unknown_condition.value)


# -- assignment ---------------------------------------------------------------------------------


def test_assignment_picks_the_agent_with_most_room_and_skips_full_ones() -> None:
    loads = [AgentLoad("a", 10, 5, 0), AgentLoad("b", 4, 1, 0), AgentLoad("c", 2, 2, 0)]
    assert pick_agent(loads) == "b"
    assert pick_agent([AgentLoad("x", 3, 1, 200), AgentLoad("y", 3, 1, 100)]) == "y"  # waited longer
    assert pick_agent([AgentLoad("c", 2, 2, 0)]) is None
