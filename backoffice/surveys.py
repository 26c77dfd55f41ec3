"""Satisfaction surveys: when a ticket closes, or an agent closes a conversation with a survey,
the customer is asked on their own channel for a CSAT score (1–5), then an NPS score (0–10).
Answers are stored with the ticket (if any) and the agent who handled it, for the quality
dashboard.

The survey asks; the dialogue recognises the answers (``dialogue.survey``) and calls
:meth:`SurveyDesk.answer`. A survey not answered within :data:`ANSWER_WINDOW` lapses.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId
from pydantic import BaseModel, Field
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from backoffice.notifications import CustomerNotifier
from store import QuickReply
from store.mongo import stored_datetime

ANSWER_WINDOW = timedelta(hours=72)
AWAITING = "surveys"
"""The kind of ``Conversation.awaiting`` flags an asked survey sets (survey id → when asked, epoch ms)."""
OPEN_STAGES = ("csat", "nps")
"""A survey's stages while it waits for an answer."""
CSAT_SCALE = range(1, 6)
NPS_SCALE = range(0, 11)

QUESTIONS: dict[str, dict[str, str]] = {
    "csat": {
        "zh": "您的工单 {ticket_id} 已完结。请为本次服务打分（1-5分，5分为非常满意），直接回复数字即可。",
        "en": "Your ticket {ticket_id} is closed. How satisfied are you with our service, from 1 to 5 "
        "(5 = very satisfied)? Just reply with the number.",
    },
    "csat_chat": {
        "zh": "本次人工服务已结束。请为本次服务打分（1-5分，5分为非常满意），直接回复数字即可。",
        "en": "This chat with our agent has ended. How satisfied are you with the service, from 1 to 5 "
        "(5 = very satisfied)? Just reply with the number.",
    },
    "nps": {
        "zh": "谢谢！您有多大可能向朋友推荐我们？请回复 0-10 的数字（10 为非常愿意）。",
        "en": "Thank you! How likely are you to recommend us to a friend? Reply 0–10 (10 = very likely).",
    },
    "thanks": {
        "zh": "感谢您的评价，我们会继续改进！",
        "en": "Thanks for your feedback; it helps us improve!",
    },
}
CSAT_LABELS = {
    "zh": ("1 非常不满意", "2 不满意", "3 一般", "4 满意", "5 非常满意"),
    "en": ("1 Very unhappy", "2 Unhappy", "3 Okay", "4 Happy", "5 Very happy"),
}


def question(stage: str, language: str, **values: Any) -> str:
    texts = QUESTIONS[stage]
    return texts.get(language, texts["zh"]).format(**values)


def csat_choices(language: str) -> list[QuickReply]:
    """Numbered so that on SMS and e-mail the line number is the score."""
    labels = CSAT_LABELS.get(language, CSAT_LABELS["zh"])
    return [QuickReply(title=label, payload=str(n)) for n, label in enumerate(labels, start=1)]


class Survey(BaseModel):
    id: str
    ticket_id: str | None = Field(None, description="None for a survey after a conversation with an agent")
    customer_id: str
    conversation_id: str
    channel: str
    agent: str | None = None
    ticket_type: str
    queue: str
    stage: str = "csat"
    """csat, nps, done, lapsed"""
    csat: int | None = None
    nps: int | None = None
    comment: str | None = None
    asked_at: datetime
    answered_at: datetime | None = None

    @property
    def open(self) -> bool:
        return self.stage in OPEN_STAGES


def _now() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class SurveyDesk:
    def __init__(self, db: AsyncDatabase[dict[str, Any]], notifier: CustomerNotifier | None = None) -> None:
        self.surveys = db["surveys"]
        self.notifier = notifier

    async def ensure_indexes(self) -> None:
        await self.surveys.create_index("conversation_id")
        await self.surveys.create_index("ticket_id")
        await self.surveys.create_index("stage")
        await self._flag_open_surveys()

    async def _flag_open_surveys(self) -> None:
        """Flag the conversations of surveys still open (asked before conversations carried the
        flag); at start, by the indexed stage."""
        if self.notifier is None:
            return
        for stage in OPEN_STAGES:
            async for doc in self.surveys.find({"stage": stage}, {"conversation_id": 1, "asked_at": 1}):
                asked = stored_datetime(doc.get("asked_at")) or _now()
                await self.notifier.store.flag_awaiting(
                    [str(doc["conversation_id"])], AWAITING, str(doc["_id"]), _epoch_ms(asked)
                )

    async def send(
        self,
        *,
        ticket_id: str,
        customer_id: str,
        conversation_id: str,
        agent: str | None,
        ticket_type: str,
        queue: str,
    ) -> Survey | None:
        """Ask once per ticket; None when there is nobody to ask."""
        return await self._ask(
            f"SV{ticket_id}", f"survey:{ticket_id}", "csat", {"ticket_id": ticket_id}, ticket_id=ticket_id,
            customer_id=customer_id,
            conversation_id=conversation_id, agent=agent, ticket_type=ticket_type, queue=queue,
        )  # fmt: skip

    async def send_after_chat(
        self, *, conversation_id: str, customer_id: str, agent: str, queue: str | None = None
    ) -> Survey | None:
        """Ask after an agent closed the conversation; None when there is nobody to ask."""
        survey_id = f"SVC{ObjectId()}"
        return await self._ask(
            survey_id, f"survey:{survey_id}", "csat_chat", {}, ticket_id=None, customer_id=customer_id,
            conversation_id=conversation_id, agent=agent, ticket_type="conversation", queue=queue or "chat",
        )  # fmt: skip

    async def _ask(self, survey_id: str, key: str, text: str, values: dict[str, Any], **fields: Any) -> Survey | None:
        """Send the CSAT question on the conversation's channel (``key``: sent once) and record the
        survey (once per id)."""
        if self.notifier is None:
            return None
        conversation_id = fields["conversation_id"]
        await self.notifier.store.flag_awaiting([conversation_id], AWAITING, survey_id, _epoch_ms(_now()))
        language = await self.notifier.language_of(conversation_id)
        message = await self.notifier.send(
            conversation_id,
            question(text, language, **values),
            key=key,
            quick_replies=csat_choices(language),
        )
        if message is None:
            return None
        survey = Survey(id=survey_id, channel=message.channel, asked_at=message.created_at, **fields)
        doc = survey.model_dump(mode="json")
        doc["_id"] = doc.pop("id")
        try:
            await self.surveys.insert_one(doc)
        except DuplicateKeyError:  # asked before (a retried close of the same ticket)
            existing = await self.get(survey.id)
            assert existing is not None
            return existing
        return survey

    async def get(self, survey_id: str) -> Survey | None:
        doc = await self.surveys.find_one({"_id": survey_id})
        return _survey(doc) if doc else None

    async def for_ticket(self, ticket_id: str) -> Survey | None:
        doc = await self.surveys.find_one({"ticket_id": ticket_id})
        return _survey(doc) if doc else None

    async def pending_for(
        self, conversation_id: str, flagged: Mapping[str, int], now: datetime | None = None
    ) -> Survey | None:
        """The survey this conversation's customer is being asked, if one is open and recent.
        ``flagged``: the conversation's survey flags (``Conversation.awaiting["surveys"]``), so a
        conversation without one costs no read; flags of surveys answered, lapsed or too old are
        cleared."""
        if not flagged:
            return None
        now = now or _now()
        found: Survey | None = None
        docs = {str(d["_id"]): d async for d in self.surveys.find({"_id": {"$in": list(flagged)}})}
        for survey_id, asked_ms in flagged.items():
            doc = docs.get(survey_id)
            if doc is None and _epoch_ms(now) - asked_ms <= ANSWER_WINDOW.total_seconds() * 1000:
                continue  # being asked right now (or the asking died): the flag stays
            survey = _survey(doc) if doc is not None else None
            if survey is not None and survey.open and now - survey.asked_at <= ANSWER_WINDOW:
                found = survey if found is None or survey.asked_at > found.asked_at else found
            elif self.notifier is not None:
                await self.notifier.store.clear_awaiting(conversation_id, AWAITING, survey_id, asked_ms)
        return found

    async def lapse(self, survey_id: str) -> None:
        """The customer wrote about something else: stop waiting for an answer."""
        await self.surveys.update_one(
            {"_id": survey_id, "stage": {"$in": ["csat", "nps"]}}, {"$set": {"stage": "lapsed"}}
        )

    async def answer(self, survey_id: str, score: int, comment: str | None = None) -> Survey:
        """Record the answer to the current question and move to the next one."""
        survey = await self.get(survey_id)
        if survey is None:
            raise KeyError(survey_id)
        changes: dict[str, Any] = {"answered_at": _now().isoformat()}
        if survey.stage == "csat":
            if score not in CSAT_SCALE:
                raise ValueError("CSAT is 1–5")
            changes.update(csat=score, stage="nps")
        elif survey.stage == "nps":
            if score not in NPS_SCALE:
                raise ValueError("NPS is 0–10")
            changes.update(nps=score, stage="done")
        else:
            return survey
        if comment:
            changes["comment"] = ((survey.comment + "\n") if survey.comment else "") + comment[:500]
        await self.surveys.update_one({"_id": survey_id, "stage": survey.stage}, {"$set": changes})
        fresh = await self.get(survey_id)
        assert fresh is not None
        return fresh


def _epoch_ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _survey(doc: dict[str, Any]) -> Survey:
    return Survey.model_validate({"id": doc["_id"], **{k: v for k, v in doc.items() if k != "_id"}})
