"""The dashboard's figures on a hand-built store: every expected number below is worked out by
hand from the seeded events (see the comments), not by the code under test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from quality.metrics import QualityFilter, quality_report
from quality.refunds import refund_report
from quality.reviews import ReviewQueue, ReviewRefused, Window
from store.mongo import ConversationStore

SHANGHAI = ZoneInfo("Asia/Shanghai")
D = datetime(2026, 11, 10, tzinfo=UTC)  # 2026-11-10 08:00 in Shanghai
START, END = datetime(2026, 11, 9, 16, tzinfo=UTC), datetime(2026, 11, 12, 16, tzinfo=UTC)  # 10th–12th local


def at(hours: float) -> datetime:
    return D + timedelta(hours=hours)


def ev(name: str, conversation: str | None, channel: str, when: datetime, **data: Any) -> dict[str, Any]:
    return {"name": name, "conversation_id": conversation, "customer_id": f"cu-{conversation}", "channel": channel,
            "data": data, "at": when}  # fmt: skip


async def seed(store: ConversationStore) -> None:
    events = [
        # c1 (rest, refund): the bot finishes it.
        ev("nlu_parsed", "c1", "rest", at(2), intent="refund", confidence=0.9),
        ev("self_service_completed", "c1", "rest", at(2.02), flow="refund"),
        # c2 (rest): greet, then order_status; a flow completes but the customer still asks for a
        # person: handed off, claimed by a1, answered after 180 s, closed after 900 s.
        ev("nlu_parsed", "c2", "rest", at(3), intent="greet", confidence=0.99),
        ev("nlu_parsed", "c2", "rest", at(3 + 1 / 60), intent="order_status", confidence=0.9),
        ev("self_service_completed", "c2", "rest", at(3 + 2 / 60), flow="order_status"),
        ev("handed_off", "c2", "rest", at(3 + 5 / 60), reason="customer_asked", intent="order_status"),
        ev("agent_claimed", "c2", "rest", at(3 + 7 / 60), agent="a1"),
        ev("agent_closed", "c2", "rest", at(3 + 20 / 60), agent="a1", resolution="done"),
        # c3 (sms, complaint), next day: handed off, nobody ever comes: abandoned.
        ev("nlu_parsed", "c3", "sms", at(28), intent="complaint", confidence=0.8),
        ev("handed_off", "c3", "sms", at(28 + 1 / 60), reason="complaint", intent="complaint"),
        # c4 (sms, refund): bot only, not finished.
        ev("nlu_parsed", "c4", "sms", at(29), intent="refund", confidence=0.7),
        # c5 (telegram, exchange): handed off, answered by a2 after 600 s without a claim event.
        ev("nlu_parsed", "c5", "telegram", at(30), intent="exchange", confidence=0.9),
        ev("handed_off", "c5", "telegram", at(30) + timedelta(seconds=30), reason="low_confidence", intent="exchange"),
        # c6: before the range.
        ev("nlu_parsed", "c6", "rest", at(-24 * 5), intent="refund", confidence=0.9),
        ev("self_service_completed", "c6", "rest", at(-24 * 5), flow="refund"),
        # Calls: 2 self-service, 1 transferred, 1 hung up.
        ev("call_self_service_completed", "v1", "voice", at(4), call_sid="CA1", outcome="self_service"),
        ev("call_self_service_completed", "v2", "voice", at(5), call_sid="CA2", outcome="self_service"),
        ev("call_transferred", "v3", "voice", at(6), call_sid="CA3", outcome="transferred"),
        ev("call_abandoned", "v4", "voice", at(7), call_sid="CA4", outcome="abandoned"),
        # Surveys: CSAT 5 and 3 for a1, 4 for a2; NPS 10, 7, 3.
        ev("survey_answered", "c2", "rest", at(4), survey_id="S1", stage="csat", score=5, agent="a1"),
        ev("survey_answered", "c2", "rest", at(4.1), survey_id="S1", stage="nps", score=10, agent="a1"),
        ev("survey_answered", "c7", "rest", at(5), survey_id="S2", stage="csat", score=3, agent="a1"),
        ev("survey_answered", "c7", "rest", at(5.1), survey_id="S2", stage="nps", score=7, agent="a1"),
        ev("survey_answered", "c8", "sms", at(6), survey_id="S3", stage="csat", score=4, agent="a2"),
        ev("survey_answered", "c8", "sms", at(6.1), survey_id="S3", stage="nps", score=3, agent="a2"),
    ]
    await store.events.insert_many(events)
    await store.messages.insert_many([
        {"_id": "m1", "conversation_id": "c1", "customer_id": "cu-c1", "channel": "rest", "direction": "in",
         "text": "我要退款", "author": "customer", "created_at": at(2), "understanding": {"intent": "refund"}},
        {"_id": "m2", "conversation_id": "c1", "customer_id": "cu-c1", "channel": "rest", "direction": "out",
         "text": "好的，已为您提交退款", "author": "bot", "in_reply_to": "m1", "created_at": at(2.01)},
        {"_id": "m3", "conversation_id": "c2", "customer_id": "cu-c2", "channel": "rest", "direction": "out",
         "text": "您好，我是客服小李", "author": "agent:a1", "created_at": at(3 + 8 / 60)},
        {"_id": "m4", "conversation_id": "c5", "customer_id": "cu-c5", "channel": "telegram", "direction": "out",
         "text": "Hello", "author": "agent:a2", "created_at": at(30) + timedelta(seconds=630)},
        {"_id": "m5", "conversation_id": "c5", "customer_id": "cu-c5", "channel": "telegram", "direction": "out",
         "text": "bot text", "author": "bot", "created_at": at(30) + timedelta(seconds=31)},
    ])  # fmt: skip
    await store.db["tickets"].insert_many([
        {"_id": "T1", "created_at": at(3.2).isoformat(), "sla": {"resolved_at": at(5.2).isoformat()},
         "channels": ["rest"], "conversation_ids": ["c2"], "assignee": "a1", "type": "refund", "status": "resolved"},
        {"_id": "T2", "created_at": at(3.5).isoformat(), "sla": {}, "channels": ["sms"], "conversation_ids": ["c3"],
         "assignee": None, "type": "complaint", "status": "new"},
    ])  # fmt: skip


async def report(store: ConversationStore, **filters: Any) -> Any:
    return await quality_report(store.db, QualityFilter(START, END, **filters), SHANGHAI, now=at(100))


async def test_overall_figures_match_the_hand_counts(store: ConversationStore) -> None:
    await seed(store)
    overall = (await report(store)).overall()
    # Bot-handled: c1–c5 (c6 is before the range). Completed without a person: c1 only (c2 was handed off).
    completion = overall["self_service_completion"]
    assert (completion["numerator"], completion["denominator"]) == (1, 5)
    assert overall["self_service_completion"]["value"] == 0.2
    assert (overall["transfer_to_human"]["numerator"], overall["transfer_to_human"]["denominator"]) == (3, 5)
    # Handed off: c2, c3, c5; nobody claimed or answered c3.
    assert (overall["abandonment"]["numerator"], overall["abandonment"]["denominator"]) == (1, 3)
    # First responses 180 s (c2) and 600 s (c5): median 390, p90 180 + 0.9 * 420 = 558.
    assert overall["first_response_time"] == {"denominator": 2, "numerator": None, "value": 390.0, "p90": 558.0,
                                              "mean": 390.0}  # fmt: skip
    assert overall["handoff_resolution_time"]["value"] == 900.0
    assert overall["handoff_resolution_time"]["denominator"] == 1
    # Calls: interception 2 / (2 + 1); abandonment 1 / 4.
    assert (overall["ivr_interception"]["numerator"], overall["ivr_interception"]["denominator"]) == (2, 3)
    assert (overall["ivr_abandonment"]["numerator"], overall["ivr_abandonment"]["denominator"]) == (1, 4)
    # CSAT 5, 3, 4: two of three are 4–5; mean 4. NPS: one promoter (10), one detractor (3) of three: 0.
    assert (overall["csat"]["numerator"], overall["csat"]["denominator"], overall["csat"]["mean"]) == (2, 3, 4.0)
    assert overall["nps"]["value"] == 0.0 and overall["nps"]["promoters"] == 1 and overall["nps"]["detractors"] == 1
    # T1 resolved after 2 h; T2 unresolved and left out.
    assert overall["ticket_resolution_time"]["value"] == 7200.0
    assert overall["ticket_resolution_time"]["denominator"] == 1


def by_key(groups: list[dict[str, Any]], metric: str) -> dict[str, tuple[int | None, int]]:
    return {g["key"]: (g["metrics"][metric]["numerator"], g["metrics"][metric]["denominator"]) for g in groups}


async def test_groupings_by_channel_intent_day_hour_and_agent(store: ConversationStore) -> None:
    await seed(store)
    result = await report(store)
    channel = by_key(result.grouped("channel"), "self_service_completion")
    assert channel["rest"] == (1, 2) and channel["sms"] == (0, 2) and channel["telegram"] == (0, 1)
    assert by_key(result.grouped("channel"), "abandonment")["sms"] == (1, 1)
    # c2's topic is order_status: the greeting says nothing about what it is about.
    intent = by_key(result.grouped("intent"), "self_service_completion")
    assert intent["refund"] == (1, 2) and intent["order_status"] == (0, 1) and intent["complaint"] == (0, 1)
    # Days in Shanghai: c1, c2 on the 10th; c3, c4, c5 on the 11th; the 12th is empty but listed.
    day = by_key(result.grouped("day"), "transfer_to_human")
    assert day == {"2026-11-10": (1, 2), "2026-11-11": (2, 3), "2026-11-12": (0, 0)}
    hours = by_key(result.grouped("hour"), "self_service_completion")
    assert len(hours) == 24 and hours["10"] == (1, 1) and hours["11"] == (0, 1)
    agent_csat = by_key(result.grouped("agent"), "csat")
    assert agent_csat["a1"] == (1, 2) and agent_csat["a2"] == (1, 1)
    assert by_key(result.grouped("agent"), "first_response_time")["a2"] == (None, 1)


async def test_filters_and_drill_down(store: ConversationStore) -> None:
    await seed(store)
    sms = (await report(store, channel="sms")).overall()
    assert (sms["transfer_to_human"]["numerator"], sms["transfer_to_human"]["denominator"]) == (1, 2)
    assert sms["ivr_interception"]["denominator"] == 0 and sms["ivr_interception"]["value"] is None
    refunds = (await report(store, intent="refund")).overall()
    assert refunds["self_service_completion"]["denominator"] == 2
    behind = (await report(store)).behind("abandonment", "channel", "sms")
    assert [(u.conversation_id, counted, u.outcome) for u, counted in behind] == [("c3", True, "abandoned")]
    everyone = (await report(store)).behind("transfer_to_human", None, None)
    assert sorted((u.conversation_id, counted) for u, counted in everyone) == [
        ("c1", False), ("c2", True), ("c3", True), ("c4", False), ("c5", True)
    ]  # fmt: skip


async def test_an_agent_reply_after_the_range_does_not_count_and_the_hand_off_stays_abandoned(
    store: ConversationStore,
) -> None:
    await seed(store)
    short_end = at(30) + timedelta(seconds=60)  # c5's agent answers at +630 s
    result = await quality_report(store.db, QualityFilter(START, short_end), SHANGHAI, now=at(100))
    overall = result.overall()
    assert (overall["abandonment"]["numerator"], overall["abandonment"]["denominator"]) == (2, 3)
    assert overall["first_response_time"]["denominator"] == 1


async def test_reviews_one_vote_per_reviewer_and_item_and_their_agreement(store: ConversationStore) -> None:
    await seed(store)
    queue = ReviewQueue(store.db)
    window = Window(START, END)
    first = await queue.queue("bot_answer", "q1", window)
    assert [(i["item_id"], i["intent"], i["bot_replies"]) for i in first["items"]] == [
        ("bot:m1", "refund", ["好的，已为您提交退款"])
    ]
    await queue.score("bot:m1", "q1", "bad")
    await queue.score("bot:m1", "q1", "good", comment="改判")  # scoring again replaces
    await queue.score("bot:m1", "q2", "bad", right_intent="return_refund")
    assert await store.db["quality_reviews"].count_documents({}) == 2
    after = await queue.queue("bot_answer", "q1", window)
    assert after["items"] == [] and (after["scored"], after["total"]) == (1, 1)
    corrections = await queue.queue("agent_correction", "q1", window)
    assert sorted(i["item_id"] for i in corrections["items"]) == ["agent:m3", "agent:m4"]
    await queue.score("agent:m3", "q1", "correct")
    with pytest.raises(ReviewRefused):
        await queue.score("agent:m3", "q1", "good")  # a correction is correct/incorrect
    with pytest.raises(ReviewRefused):
        await queue.score("bot:m3", "q1", "good")  # m3 is not a customer message
    overall = (await report(store)).overall()
    assert (overall["bot_answer_good"]["numerator"], overall["bot_answer_good"]["denominator"]) == (1, 2)
    assert (overall["agent_correction_correct"]["numerator"], overall["agent_correction_correct"]["denominator"]) == (
        1, 1)  # fmt: skip
    by_agent = by_key((await report(store)).grouped("agent"), "agent_correction_correct")
    assert by_agent["a1"] == (1, 1)


async def test_refund_report_counts_amounts_and_reasons_per_day_and_week(store: ConversationStore) -> None:
    def request(rid: str, when: datetime, amount: float, reason: str | None, status: str, **extra: Any) -> dict:
        return {"_id": rid, "type": extra.get("type", "refund"), "status": status, "amount": amount, "reason": reason,
                "created_at": when.isoformat(), "decided_by": extra.get("decided_by"), "order_id": "1"}  # fmt: skip

    await store.db["aftersales_requests"].insert_many([
        request("A1", at(1), 89.0, "破损", "completed", decided_by="system:small_amount"),
        request("A2", at(2), 10.5, "破损", "applied"),
        request("A3", at(26), 200.0, "七天无理由", "rejected", type="return_refund"),
        request("A4", at(27), 50.0, None, "completed"),
        request("A5", at(3), 999.0, "发错货", "completed", type="exchange"),  # not a refund
        request("A6", at(-72), 5.0, "破损", "completed"),  # before the range
    ])  # fmt: skip
    daily = await refund_report(store.db, START, END, SHANGHAI, "day")
    assert daily["total"]["count"] == 4 and daily["total"]["amount"] == 349.5
    assert daily["total"]["completed_amount"] == 139.0 and daily["total"]["rejected"] == 1
    assert daily["total"]["automatic"] == 1
    assert [(p["period"], p["count"], p["amount"]) for p in daily["periods"]] == [
        ("2026-11-10", 2, 99.5), ("2026-11-11", 2, 250.0), ("2026-11-12", 0, 0.0)
    ]  # fmt: skip
    assert [(r["reason"], r["count"]) for r in daily["reasons"]] == [("破损", 2), ("", 1), ("七天无理由", 1)]
    weekly = await refund_report(store.db, START, END, SHANGHAI, "week")
    assert [(p["period"], p["count"]) for p in weekly["periods"]] == [("2026-W46", 4)]
