"""The dashboard's figures over a date range ``[start, end)``: each metric's definition, its
numerator and denominator, grouped by channel, intent, day, hour and agent, and the units
(conversations, calls, survey answers, tickets, reviews) behind every figure for drill-down.

Reads the ``events`` log (one query over the range), agents' messages of handed-off
conversations, ``tickets`` and ``quality_reviews``; aggregates in Python. nx-27017's ``$group``
ignores a compound ``_id`` and a dotted projection comes back flattened, so the queries are
plain ``find`` calls with whole-field projections, which real MongoDB serves from the
``(name, at)`` index just as well. Knows nothing of HTTP or how figures are drawn.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pymongo.asynchronous.database import AsyncDatabase

from store.mongo import stored_datetime

Kind = Literal["rate", "duration", "csat", "nps"]
Source = Literal["conversation", "call", "csat", "nps", "ticket", "bot_review", "correction_review"]
DIMENSIONS = ("channel", "intent", "day", "hour", "agent")
NONE_KEY = ""
"""Group key of units without that dimension (no agent, no recognised intent)."""

# Intents that say nothing about what the conversation is about.
NON_TOPIC_INTENTS = frozenset(
    {"nlu_fallback", "greet", "goodbye", "affirm", "deny", "thanks", "inform", "out_of_scope"}
)
BOT_TURN_EVENTS = ("nlu_parsed", "nlu_unavailable")
CONVERSATION_EVENTS = (
    *BOT_TURN_EVENTS,
    "self_service_completed",
    "handed_off",
    "agent_claimed",
    "agent_closed",
)
CALL_OUTCOMES = {
    "call_self_service_completed": "self_service",
    "call_transferred": "transferred",
    "call_abandoned": "abandoned",
}
EVENT_NAMES = (*CONVERSATION_EVENTS, *CALL_OUTCOMES, "survey_answered")


@dataclass(slots=True)
class Unit:
    """One thing a metric counts: a conversation, a call, a survey answer, a ticket or a review."""

    source: Source
    id: str
    conversation_id: str | None
    customer_id: str | None
    channel: str
    intent: str
    agent: str
    at: datetime
    """When it started within the range: its day and hour."""
    flags: dict[str, bool] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    score: int | None = None
    outcome: str = ""

    def key(self, dimension: str, zone: ZoneInfo) -> str:
        if dimension == "day":
            return self.at.astimezone(zone).date().isoformat()
        if dimension == "hour":
            return f"{self.at.astimezone(zone).hour:02d}"
        value: str = getattr(self, dimension)
        return value


@dataclass(frozen=True, slots=True)
class MetricSpec:
    name: str
    kind: Kind
    source: Source
    label: dict[str, str]
    definition: dict[str, str]
    denominator: Callable[[Unit], bool]
    numerator: Callable[[Unit], bool] | None = None
    duration: str | None = None
    """For duration metrics: the key of ``Unit.seconds``."""
    better: Literal["higher", "lower"] = "higher"

    def counted(self, unit: Unit) -> bool:
        if unit.source != self.source:
            return False
        if self.duration is not None:
            return self.duration in unit.seconds
        return self.denominator(unit)

    def in_numerator(self, unit: Unit) -> bool:
        if self.numerator is None:
            return False
        return self.numerator(unit)

    def compute(self, units: Iterable[Unit]) -> dict[str, Any]:
        counted = [u for u in units if self.counted(u)]
        denominator = len(counted)
        if self.kind == "duration":
            assert self.duration is not None
            values = sorted(u.seconds[self.duration] for u in counted)
            return {
                "denominator": denominator,
                "numerator": None,
                "value": round(statistics.median(values), 1) if values else None,
                "p90": round(percentile(values, 0.9), 1) if values else None,
                "mean": round(statistics.fmean(values), 1) if values else None,
            }
        if self.kind == "nps":
            promoters = sum(1 for u in counted if (u.score or 0) >= 9)
            detractors = sum(1 for u in counted if (u.score if u.score is not None else 0) <= 6)
            return {
                "denominator": denominator,
                "numerator": promoters - detractors,
                "promoters": promoters,
                "detractors": detractors,
                "value": round(100 * (promoters - detractors) / denominator, 1) if denominator else None,
            }
        numerator = sum(1 for u in counted if self.in_numerator(u))
        result: dict[str, Any] = {
            "denominator": denominator,
            "numerator": numerator,
            "value": round(numerator / denominator, 4) if denominator else None,
        }
        if self.kind == "csat":
            scores = [u.score for u in counted if u.score is not None]
            result["mean"] = round(statistics.fmean(scores), 2) if scores else None
        return result


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), on sorted values."""
    if len(sorted_values) == 1:
        return sorted_values[0]
    position = (len(sorted_values) - 1) * q
    low = int(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def _flag(name: str) -> Callable[[Unit], bool]:
    return lambda unit: unit.flags.get(name, False)


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec(
        "self_service_completion", "rate", "conversation",
        {"zh": "自助完成率", "en": "Self-service completion"},
        {
            "zh": "有「自助完成」（self_service_completed）且未转人工的会话 ÷ 机器人处理过至少一条消息的会话。",
            "en": "Conversations with a self_service_completed event and no hand-off ÷ conversations in which "
            "the bot handled at least one customer message.",
        },
        _flag("bot_handled"), _flag("completed"),
    ),
    MetricSpec(
        "transfer_to_human", "rate", "conversation",
        {"zh": "转人工率", "en": "Transfer to a human"},
        {
            "zh": "有转人工（handed_off）的会话 ÷ 机器人处理过至少一条消息的会话。",
            "en": "Conversations with a handed_off event ÷ conversations in which the bot handled at least one "
            "customer message.",
        },
        _flag("bot_handled"), _flag("handed_off"), better="lower",
    ),
    MetricSpec(
        "ivr_interception", "rate", "call",
        {"zh": "IVR 拦截率", "en": "IVR interception"},
        {
            "zh": "电话在语音自助中办完（call_self_service_completed）÷ 自助办完或转人工（call_transferred）的来电；"
            "每通电话都可按 0 转人工，中途挂断的来电不计入。",
            "en": "Calls finished in self-service ÷ calls finished in self-service or transferred to an agent; "
            "every call is offered an agent (key 0); calls the caller hung up are left out.",
        },
        lambda u: u.outcome in ("self_service", "transferred"), lambda u: u.outcome == "self_service",
    ),
    MetricSpec(
        "ivr_abandonment", "rate", "call",
        {"zh": "IVR 放弃率", "en": "IVR abandonment"},
        {
            "zh": "既未自助办完也未转人工就挂断的来电（call_abandoned）÷ 全部结束的来电。",
            "en": "Calls hung up without self-service or a transfer (call_abandoned) ÷ all ended calls.",
        },
        lambda u: True, lambda u: u.outcome == "abandoned", better="lower",
    ),
    MetricSpec(
        "abandonment", "rate", "conversation",
        {"zh": "转人工放弃率", "en": "Hand-off abandonment"},
        {
            "zh": "转人工后到所选时段结束仍无客服接入（agent_claimed）也无客服回复的会话 ÷ 转人工的会话。",
            "en": "Handed-off conversations that no agent claimed or answered before the end of the range ÷ "
            "handed-off conversations.",
        },
        _flag("handed_off"), _flag("abandoned"), better="lower",
    ),
    MetricSpec(
        "first_response_time", "duration", "conversation",
        {"zh": "人工首次响应时长", "en": "First agent response"},
        {
            "zh": "转人工（handed_off）到客服第一条回复的秒数，取中位数（另列 P90）；只计有客服回复的会话。",
            "en": "Seconds from the hand-off to the agent's first message: median (and p90), over handed-off "
            "conversations an agent answered.",
        },
        lambda u: True, duration="first_response", better="lower",
    ),
    MetricSpec(
        "handoff_resolution_time", "duration", "conversation",
        {"zh": "人工会话解决时长", "en": "Hand-off resolution time"},
        {
            "zh": "转人工到客服结束会话（agent_closed）的秒数，中位数（另列 P90）。",
            "en": "Seconds from the hand-off to the agent closing the conversation (agent_closed): median "
            "(and p90).",
        },
        lambda u: True, duration="resolution", better="lower",
    ),
    MetricSpec(
        "ticket_resolution_time", "duration", "ticket",
        {"zh": "工单解决时长", "en": "Ticket resolution time"},
        {
            "zh": "时段内创建的工单从创建到解决（sla.resolved_at）的秒数，中位数（另列 P90）；未解决的不计入。",
            "en": "Seconds from a ticket's creation to its resolution (sla.resolved_at), for tickets created in "
            "the range and resolved: median (and p90).",
        },
        lambda u: True, duration="resolution", better="lower",
    ),
    MetricSpec(
        "csat", "csat", "csat",
        {"zh": "满意度 CSAT", "en": "CSAT"},
        {
            "zh": "满意度回答中 4–5 分的比例（1–5 分制，survey_answered stage=csat）；另列平均分。",
            "en": "Share of CSAT answers (1–5, survey_answered stage csat) scoring 4 or 5; the mean alongside.",
        },
        lambda u: True, lambda u: (u.score or 0) >= 4,
    ),
    MetricSpec(
        "nps", "nps", "nps",
        {"zh": "净推荐值 NPS", "en": "NPS"},
        {
            "zh": "推荐者（9–10 分）占比 − 贬损者（0–6 分）占比，×100（0–10 分制）。",
            "en": "% promoters (9–10) − % detractors (0–6) of the NPS answers (0–10), from −100 to 100.",
        },
        lambda u: True,
    ),
    MetricSpec(
        "bot_answer_good", "rate", "bot_review",
        {"zh": "AI 回答好评率", "en": "Bot answers judged good"},
        {
            "zh": "质检评为「好」的机器人回答 ÷ 质检评过的机器人回答（每位质检员每条一票）。",
            "en": "Bot answers scored good ÷ bot answers scored by quality staff (one vote per reviewer and item).",
        },
        lambda u: True, _flag("positive"),
    ),
    MetricSpec(
        "agent_correction_correct", "rate", "correction_review",
        {"zh": "人工纠正正确率", "en": "Agent corrections judged correct"},
        {
            "zh": "质检评为「对」的人工纠正 ÷ 质检评过的人工纠正（每位质检员每条一票）。",
            "en": "Agent corrections scored correct ÷ agent corrections scored (one vote per reviewer and item).",
        },
        lambda u: True, _flag("positive"),
    ),
)  # fmt: skip
METRIC_BY_NAME = {m.name: m for m in METRICS}


@dataclass(frozen=True, slots=True)
class QualityFilter:
    start: datetime
    end: datetime
    channel: str | None = None
    intent: str | None = None
    agent: str | None = None

    def keeps(self, unit: Unit) -> bool:
        return (
            (self.channel is None or unit.channel == self.channel)
            and (self.intent is None or unit.intent == self.intent)
            and (self.agent is None or unit.agent == self.agent)
        )


@dataclass(slots=True)
class QualityReport:
    filter: QualityFilter
    zone: ZoneInfo
    units: list[Unit]

    def overall(self) -> dict[str, dict[str, Any]]:
        return {m.name: m.compute(self.units) for m in METRICS}

    def days(self) -> list[str]:
        first = self.filter.start.astimezone(self.zone).date()
        last = (self.filter.end - timedelta(microseconds=1)).astimezone(self.zone).date()
        return [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]

    def grouped(self, dimension: str) -> list[dict[str, Any]]:
        """One row per key of the dimension: every metric over the units with that key."""
        buckets: dict[str, list[Unit]] = {}
        if dimension == "day":
            buckets = {day: [] for day in self.days()}
        elif dimension == "hour":
            buckets = {f"{h:02d}": [] for h in range(24)}
        for unit in self.units:
            buckets.setdefault(unit.key(dimension, self.zone), []).append(unit)
        return [
            {"key": key, "metrics": {m.name: m.compute(units) for m in METRICS}}
            for key, units in sorted(buckets.items())
        ]

    def behind(self, metric: str, dimension: str | None, key: str | None) -> list[tuple[Unit, bool]]:
        """The units a figure counts, each with whether it is in the numerator (drill-down)."""
        spec = METRIC_BY_NAME[metric]
        return [
            (u, spec.in_numerator(u))
            for u in self.units
            if spec.counted(u) and (dimension is None or u.key(dimension, self.zone) == key)
        ]


async def quality_report(
    db: AsyncDatabase[dict[str, Any]], where: QualityFilter, zone: ZoneInfo, *, now: datetime | None = None
) -> QualityReport:
    """Everything the dashboard shows for the range and filters (one pass over the store)."""
    events = [
        doc
        async for doc in db["events"].find(
            {"name": {"$in": list(EVENT_NAMES)}, "at": {"$gte": where.start, "$lt": where.end}},
            {"_id": 0, "name": 1, "conversation_id": 1, "customer_id": 1, "channel": 1, "data": 1, "at": 1},
        )
    ]
    for doc in events:
        doc["at"] = stored_datetime(doc.get("at")) or where.start
    events.sort(key=lambda d: d["at"])
    conversations = _conversations(events)
    horizon = min(where.end, now or datetime.now(UTC))
    await _agent_messages(db, conversations, horizon)
    units: list[Unit] = [c.unit() for c in conversations.values() if c.first_at is not None]
    intents = {c.id: c.intent for c in conversations.values()}
    agents = {c.id: c.agent for c in conversations.values()}
    units += _calls(events, intents)
    units += _survey_answers(events, intents)
    units += await _tickets(db, where, intents)
    units += await _reviews(db, where, agents)
    return QualityReport(where, zone, [u for u in units if where.keeps(u)])


@dataclass(slots=True)
class _Conversation:
    id: str
    customer_id: str | None = None
    channel: str = ""
    first_at: datetime | None = None
    bot_handled: bool = False
    completed: bool = False
    topic: str | None = None
    handoff_intent: str | None = None
    handed_at: datetime | None = None
    claimed_at: datetime | None = None
    closed_at: datetime | None = None
    agent_reply_at: datetime | None = None
    agent: str = NONE_KEY

    @property
    def intent(self) -> str:
        return self.topic or self.handoff_intent or NONE_KEY

    def unit(self) -> Unit:
        assert self.first_at is not None
        handed = self.handed_at is not None
        answered = self.claimed_at is not None or self.agent_reply_at is not None
        seconds: dict[str, float] = {}
        if self.handed_at is not None and self.agent_reply_at is not None:
            seconds["first_response"] = (self.agent_reply_at - self.handed_at).total_seconds()
        if self.handed_at is not None and self.closed_at is not None:
            seconds["resolution"] = (self.closed_at - self.handed_at).total_seconds()
        completed = self.completed and not handed
        if completed:
            outcome = "self_service"
        elif handed and self.closed_at is not None:
            outcome = "agent_closed"
        elif handed and answered:
            outcome = "with_agent"
        elif handed:
            outcome = "abandoned"
        else:
            outcome = "bot_unfinished"
        return Unit(
            source="conversation", id=self.id, conversation_id=self.id, customer_id=self.customer_id,
            channel=self.channel, intent=self.intent, agent=self.agent, at=self.first_at,
            flags={"bot_handled": self.bot_handled, "completed": completed and self.bot_handled,
                   "handed_off": handed, "abandoned": handed and not answered},
            seconds=seconds, outcome=outcome,
        )  # fmt: skip


def _conversations(events: list[dict[str, Any]]) -> dict[str, _Conversation]:
    found: dict[str, _Conversation] = {}
    for doc in events:
        name, conversation_id = doc["name"], doc.get("conversation_id")
        if name not in CONVERSATION_EVENTS or not conversation_id:
            continue
        c = found.setdefault(conversation_id, _Conversation(conversation_id))
        at: datetime = doc["at"]
        data: dict[str, Any] = doc.get("data") or {}
        if c.first_at is None:
            c.first_at, c.channel, c.customer_id = at, doc.get("channel") or "", doc.get("customer_id")
        if name in BOT_TURN_EVENTS:
            c.bot_handled = True
            intent = data.get("intent")
            if c.topic is None and isinstance(intent, str) and intent not in NON_TOPIC_INTENTS:
                c.topic = intent
        elif name == "self_service_completed":
            c.completed = True
        elif name == "handed_off":
            if c.handed_at is None:
                c.handed_at = at
                if isinstance(data.get("intent"), str) and data["intent"] not in NON_TOPIC_INTENTS:
                    c.handoff_intent = data["intent"]
        elif name == "agent_claimed":
            if c.handed_at is not None and c.claimed_at is None:
                c.claimed_at = at
            if not c.agent and data.get("agent"):
                c.agent = str(data["agent"])
        elif name == "agent_closed":
            if c.handed_at is not None and c.closed_at is None and at >= c.handed_at:
                c.closed_at = at
            if not c.agent and data.get("agent"):
                c.agent = str(data["agent"])
    return found


async def _agent_messages(
    db: AsyncDatabase[dict[str, Any]], found: dict[str, _Conversation], horizon: datetime
) -> None:
    """The first agent message after each hand-off, before the end of the range."""
    handed = [c.id for c in found.values() if c.handed_at is not None]
    for chunk in range(0, len(handed), 500):
        ids = handed[chunk : chunk + 500]
        cursor = db["messages"].find(
            {"conversation_id": {"$in": ids}, "direction": "out"},
            {"_id": 0, "conversation_id": 1, "author": 1, "created_at": 1},
        )
        async for doc in cursor:
            author = str(doc.get("author") or "")
            if not author.startswith("agent:"):
                continue
            c = found[doc["conversation_id"]]
            at = stored_datetime(doc.get("created_at"))
            if at is None or c.handed_at is None or not c.handed_at <= at < horizon:
                continue
            if c.agent_reply_at is None or at < c.agent_reply_at:
                c.agent_reply_at = at
                if not c.agent:
                    c.agent = author.removeprefix("agent:")


def _calls(events: list[dict[str, Any]], intents: dict[str, str]) -> list[Unit]:
    units = []
    for doc in events:
        outcome = CALL_OUTCOMES.get(doc["name"])
        if outcome is None:
            continue
        data = doc.get("data") or {}
        conversation_id = doc.get("conversation_id")
        intent = intents.get(conversation_id or "", NONE_KEY) or str(data.get("scenario") or NONE_KEY)
        units.append(
            Unit(
                source="call", id=str(data.get("call_sid") or conversation_id or ""), conversation_id=conversation_id,
                customer_id=doc.get("customer_id"), channel=doc.get("channel") or "voice", intent=intent,
                agent=NONE_KEY, at=doc["at"], outcome=outcome,
            )
        )  # fmt: skip
    return units


def _survey_answers(events: list[dict[str, Any]], intents: dict[str, str]) -> list[Unit]:
    units = []
    for doc in events:
        if doc["name"] != "survey_answered":
            continue
        data = doc.get("data") or {}
        stage, score = data.get("stage"), data.get("score")
        if stage not in ("csat", "nps") or not isinstance(score, int):
            continue
        conversation_id = doc.get("conversation_id")
        units.append(
            Unit(
                source=stage, id=f"{data.get('survey_id') or conversation_id}:{stage}",
                conversation_id=conversation_id, customer_id=doc.get("customer_id"),
                channel=doc.get("channel") or "", intent=intents.get(conversation_id or "", NONE_KEY),
                agent=str(data.get("agent") or NONE_KEY), at=doc["at"], score=score, outcome=f"{stage} {score}",
            )
        )  # fmt: skip
    return units


async def _tickets(db: AsyncDatabase[dict[str, Any]], where: QualityFilter, intents: dict[str, str]) -> list[Unit]:
    """Tickets created in the range. ``created_at`` is stored as an ISO string (pydantic's JSON
    dump), so the store narrows by string with a day's margin and the exact range is applied here."""
    low = (where.start - timedelta(days=1)).isoformat()
    high = (where.end + timedelta(days=1)).isoformat()
    units = []
    cursor = db["tickets"].find(
        {"created_at": {"$gte": low, "$lt": high}},
        {"_id": 1, "created_at": 1, "sla": 1, "channels": 1, "conversation_ids": 1, "assignee": 1, "type": 1,
         "customer_id": 1, "status": 1},
    )  # fmt: skip
    async for doc in cursor:
        created = stored_datetime(doc.get("created_at"))
        if created is None or not where.start <= created < where.end:
            continue
        resolved = stored_datetime((doc.get("sla") or {}).get("resolved_at"))
        conversation_ids = doc.get("conversation_ids") or []
        conversation_id = conversation_ids[0] if conversation_ids else None
        channels = doc.get("channels") or []
        units.append(
            Unit(
                source="ticket", id=str(doc["_id"]), conversation_id=conversation_id,
                customer_id=doc.get("customer_id"), channel=channels[0] if channels else "",
                intent=intents.get(conversation_id or "", NONE_KEY) or str(doc.get("type") or NONE_KEY),
                agent=str(doc.get("assignee") or NONE_KEY), at=created,
                seconds={"resolution": (resolved - created).total_seconds()} if resolved else {},
                outcome=str(doc.get("status") or ""),
            )
        )  # fmt: skip
    return units


async def _reviews(db: AsyncDatabase[dict[str, Any]], where: QualityFilter, agents: dict[str, str]) -> list[Unit]:
    """Reviews of items from the range (by when the answer was given, not when it was scored)."""
    units = []
    cursor = db["quality_reviews"].find({"item_at_ms": {"$gte": epoch_ms(where.start), "$lt": epoch_ms(where.end)}})
    async for doc in cursor:
        source: Source = "bot_review" if doc.get("kind") == "bot_answer" else "correction_review"
        conversation_id = doc.get("conversation_id")
        units.append(
            Unit(
                source=source, id=str(doc["_id"]), conversation_id=conversation_id, customer_id=doc.get("customer_id"),
                channel=str(doc.get("channel") or ""), intent=str(doc.get("intent") or NONE_KEY),
                agent=str(doc.get("agent") or agents.get(conversation_id or "", NONE_KEY)),
                at=datetime.fromtimestamp(int(doc["item_at_ms"]) / 1000, UTC),
                flags={"positive": doc.get("verdict") in ("good", "correct")}, outcome=str(doc.get("verdict")),
            )
        )  # fmt: skip
    return units


def epoch_ms(moment: datetime) -> int:
    """Epoch milliseconds: review times are stored as integers, which every server compares alike."""
    return int(moment.timestamp() * 1000)
