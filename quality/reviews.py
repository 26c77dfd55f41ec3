"""The review queue (质检复核): quality staff score bot answers ("AI回答的好不好": a customer
message, the intent the NLU read and the bot's reply) and agents' corrections ("人工纠正的对不对":
a conversation the bot handed off and the agent's first answer), good/bad or correct/incorrect,
with the intent they think was right and a comment.

Reviews live in ``quality_reviews``, one per item and reviewer (scoring again replaces the
earlier score). An item's facts (conversation, channel, intent, agent, when it was answered) are
read from the store when it is scored, never taken from the client. Knows nothing of HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pymongo import DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from errors import UserError
from quality.metrics import NON_TOPIC_INTENTS, epoch_ms
from store.mongo import stored_datetime

Kind = Literal["bot_answer", "agent_correction"]
KINDS: tuple[Kind, ...] = ("bot_answer", "agent_correction")
VERDICTS: dict[Kind, tuple[str, str]] = {"bot_answer": ("good", "bad"), "agent_correction": ("correct", "incorrect")}
PREFIX: dict[Kind, str] = {"bot_answer": "bot:", "agent_correction": "agent:"}
CANDIDATES = 400
"""How many recent items are looked at to fill one page of the queue."""


class ReviewRefused(UserError):
    """The item does not exist or the verdict does not fit its kind; nothing was stored."""

    code = "invalid_review"


def kind_of(item_id: str) -> Kind:
    for kind, prefix in PREFIX.items():
        if item_id.startswith(prefix) and len(item_id) > len(prefix):
            return kind
    raise ReviewRefused(f"unknown item {item_id!r}: ids start with 'bot:' or 'agent:'")


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime
    end: datetime


class ReviewQueue:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.db = db
        self.reviews = db["quality_reviews"]
        self.messages = db["messages"]
        self.events = db["events"]

    async def ensure_indexes(self) -> None:
        await self.reviews.create_index("reviewer")
        await self.reviews.create_index("item_at_ms")

    # -- the queue ---------------------------------------------------------------------------

    async def queue(self, kind: Kind, reviewer: str, window: Window, limit: int = 10) -> dict[str, Any]:
        """Items of this kind from the window the reviewer has not scored yet, newest first, with
        the reviewer's progress (scored / all items in the window)."""
        done = {
            str(d["item_id"]) async for d in self.reviews.find({"reviewer": reviewer, "kind": kind}, {"item_id": 1})
        }
        items = await (self._bot_answers(window) if kind == "bot_answer" else self._corrections(window))
        total = len(items)
        scored = sum(1 for item in items if item["item_id"] in done)
        pending = [item for item in items if item["item_id"] not in done][:limit]
        if kind == "bot_answer":
            await self._attach_replies(pending)
        return {"kind": kind, "items": pending, "total": total, "scored": scored, "verdicts": list(VERDICTS[kind])}

    async def _bot_answers(self, window: Window) -> list[dict[str, Any]]:
        fields = ("conversation_id", "customer_id", "channel", "text", "understanding", "created_at")
        cursor = (
            self.messages.find(
                {"direction": "in", "created_at": {"$gte": window.start, "$lt": window.end}}, dict.fromkeys(fields, 1)
            )
            .sort("_id", DESCENDING)
            .limit(CANDIDATES)
        )
        items = []
        async for doc in cursor:
            understanding = doc.get("understanding") or {}
            if not understanding.get("intent") or not doc.get("text"):
                continue  # only messages the NLU read: attachments alone have no answer to judge
            items.append(
                {
                    "item_id": f"bot:{doc['_id']}",
                    "conversation_id": doc["conversation_id"],
                    "channel": doc.get("channel"),
                    "at": _iso(doc.get("created_at")),
                    "customer_text": doc.get("text", ""),
                    "intent": understanding.get("intent"),
                    "confidence": understanding.get("confidence"),
                }
            )
        return items

    async def _attach_replies(self, items: list[dict[str, Any]]) -> None:
        ids = [item["item_id"].removeprefix("bot:") for item in items]
        replies: dict[str, list[str]] = {}
        async for doc in self.messages.find({"in_reply_to": {"$in": ids}}, {"in_reply_to": 1, "text": 1, "author": 1}):
            if doc.get("author", "bot") == "bot":
                replies.setdefault(str(doc["in_reply_to"]), []).append(str(doc.get("text", "")))
        for item in items:
            item["bot_replies"] = replies.get(item["item_id"].removeprefix("bot:"), [])

    async def _corrections(self, window: Window) -> list[dict[str, Any]]:
        handed: dict[str, dict[str, Any]] = {}
        cursor = self.events.find(
            {"name": "handed_off", "at": {"$gte": window.start, "$lt": window.end}},
            {"_id": 0, "conversation_id": 1, "channel": 1, "data": 1, "at": 1},
        )
        async for doc in cursor:
            if doc.get("conversation_id"):
                handed.setdefault(str(doc["conversation_id"]), doc)
        items = []
        ids = list(handed)
        for chunk in range(0, len(ids), 500):
            part = ids[chunk : chunk + 500]
            firsts: dict[str, dict[str, Any]] = {}
            async for doc in self.messages.find(
                {"conversation_id": {"$in": part}, "direction": "out"},
                {"_id": 1, "conversation_id": 1, "author": 1, "text": 1, "created_at": 1},
            ):
                author = str(doc.get("author") or "")
                handed_at = stored_datetime(handed[doc["conversation_id"]].get("at"))
                at = stored_datetime(doc.get("created_at"))
                if not author.startswith("agent:") or at is None or handed_at is None or at < handed_at:
                    continue
                current = firsts.get(doc["conversation_id"])
                if current is None or str(doc["_id"]) < str(current["_id"]):
                    firsts[doc["conversation_id"]] = doc
            for conversation_id, message in firsts.items():
                event = handed[conversation_id]
                data = event.get("data") or {}
                items.append(
                    {
                        "item_id": f"agent:{message['_id']}",
                        "conversation_id": conversation_id,
                        "channel": event.get("channel"),
                        "at": _iso(message.get("created_at")),
                        "handoff_reason": data.get("reason"),
                        "intent": data.get("intent"),
                        "agent": str(message["author"]).removeprefix("agent:"),
                        "agent_text": message.get("text", ""),
                        "customer_texts": await self._before(conversation_id, stored_datetime(event.get("at"))),
                    }
                )
        items.sort(key=lambda item: str(item["at"]), reverse=True)
        return items

    async def _before(self, conversation_id: str, moment: datetime | None, count: int = 3) -> list[str]:
        """The customer's last messages before the hand-off: what the agent had to put right."""
        cursor = (
            self.messages.find({"conversation_id": conversation_id, "direction": "in"}, {"text": 1, "created_at": 1})
            .sort("_id", DESCENDING)
            .limit(20)
        )
        texts = []
        async for doc in cursor:
            at = stored_datetime(doc.get("created_at"))
            if moment is None or (at is not None and at <= moment):
                texts.append(str(doc.get("text", "")))
            if len(texts) == count:
                break
        return list(reversed(texts))

    # -- scoring -----------------------------------------------------------------------------

    async def score(
        self, item_id: str, reviewer: str, verdict: str, *, right_intent: str | None = None, comment: str | None = None
    ) -> dict[str, Any]:
        kind = kind_of(item_id)
        if verdict not in VERDICTS[kind]:
            raise ReviewRefused(f"a {kind} is scored {' or '.join(VERDICTS[kind])}, not {verdict!r}")
        facts = await self._facts(kind, item_id)
        now = datetime.now(UTC)
        doc = {
            "_id": f"{item_id}|{reviewer}",
            "item_id": item_id,
            "kind": kind,
            "reviewer": reviewer,
            "verdict": verdict,
            "right_intent": right_intent,
            "comment": comment,
            "reviewed_at_ms": epoch_ms(now),
            **facts,
        }
        # replace_one with the whole document (not an update upsert: nx-27017 would drop the _id).
        await self.reviews.replace_one({"_id": doc["_id"]}, doc, upsert=True)
        return doc

    async def _facts(self, kind: Kind, item_id: str) -> dict[str, Any]:
        message_id = item_id.removeprefix(PREFIX[kind])
        message = await self.messages.find_one({"_id": message_id})
        if message is None:
            raise ReviewRefused(f"no such item {item_id!r}")
        at = stored_datetime(message.get("created_at")) or datetime.now(UTC)
        facts: dict[str, Any] = {
            "conversation_id": message["conversation_id"],
            "customer_id": message.get("customer_id"),
            "channel": message.get("channel"),
            "item_at_ms": epoch_ms(at),
        }
        if kind == "bot_answer":
            understanding = message.get("understanding") or {}
            if message.get("direction") != "in" or not understanding.get("intent"):
                raise ReviewRefused(f"{item_id!r} is not a customer message the bot answered")
            facts["intent"] = _topic(understanding.get("intent"))
            facts["agent"] = None
            return facts
        author = str(message.get("author") or "")
        if message.get("direction") != "out" or not author.startswith("agent:"):
            raise ReviewRefused(f"{item_id!r} is not an agent's message")
        handed = await self.events.find_one(
            {"name": "handed_off", "conversation_id": message["conversation_id"]}, {"data": 1}
        )
        facts["intent"] = _topic((handed or {}).get("data", {}).get("intent"))
        facts["agent"] = author.removeprefix("agent:")
        return facts


def _topic(intent: Any) -> str:
    return intent if isinstance(intent, str) and intent not in NON_TOPIC_INTENTS else ""


def _iso(value: Any) -> str | None:
    moment = stored_datetime(value)
    return moment.isoformat() if moment else None
