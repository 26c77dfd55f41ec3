"""Demo conversations for ``make run`` so the quality dashboard, the refund report and the review
queue are not empty: customers write through the real turn pipeline (the handler every channel
calls: store → NLU → dialogue), some finish self-service, some ask for a person, and a demo agent
claims, answers and closes those through the hand-off desk, as the agent API does. Survey answers need
a closed ticket and days of waiting, so a few are written directly as ``survey_answered`` events
marked ``data.demo = true``.

Runs once per database (a ``counters`` marker); knows nothing of HTTP or wire formats.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from pymongo.errors import DuplicateKeyError

from backoffice.handoff import AgentActionRefused, HandoffDesk
from store import Event, InboundMessage
from store.mongo import ConversationStore, new_id

log = logging.getLogger(__name__)

MARKER = "quality_demo"
DEMO_AGENT = "demo.agent"
Turns = Callable[[InboundMessage], Awaitable[Any]]
"""A channel's inbound handler: persist the message, run the turn, hand the replies on."""

# (channel, phone, messages): demo customers from shop/demo_orders.json and strangers.
SCRIPTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("rest", "13800138000", ("帮我查一下订单202611150001到哪了",)),
    ("app", "13800138000", ("订单202611180002发货了吗",)),
    ("sms", "13911112222", ("我的快递202611190006到哪了",)),
    ("rest", "13911112222", ("退货运费谁出",)),
    ("telegram", "13800138000", ("七天无理由退货怎么算",)),
    ("rest", "13700000001", ("转人工",)),
    ("sms", "13700000002", ("我要投诉，快递员态度很差一直推脱",)),
    ("app", "13700000003", ("你好", "人工客服")),
    ("rest", "13700000004", ("你好",)),
    ("email", "13700000005", ("发票怎么开",)),
    ("rest", "13700000006", ("转人工",)),
)
SURVEYS = ((5, 10), (4, 8), (2, 3), (5, 9))


async def seed_demo_quality(store: ConversationStore, handlers: Mapping[str, Turns], handoff: HandoffDesk) -> int:
    """Drive the demo conversations once through the channels' handlers (a script for a channel
    that is not configured runs on ``rest``) and the hand-off desk (the demo agent's part);
    returns how many were driven (0 if done before)."""
    if "rest" not in handlers:
        raise ValueError("the quality demo needs the REST channel")
    try:
        await store.counters.insert_one({"_id": MARKER, "value": 1})
    except DuplicateKeyError:
        return 0
    for n, (channel, phone, texts) in enumerate(SCRIPTS):
        channel = channel if channel in handlers else "rest"
        sender = f"demo-quality-{channel}-{n}"
        for m, text in enumerate(texts):
            await handlers[channel](
                InboundMessage(
                    channel=channel, sender_id=sender, channel_message_id=f"{MARKER}-{n}-{m}", text=text,
                    profile={"phone": phone},
                )
            )  # fmt: skip
    waiting = [c async for c in store.conversations.find({"state": "waiting_agent", "sender_id": {"$regex": "^demo-"}})]
    for number, doc in enumerate(waiting):
        await _agent_handles(handoff, doc["_id"], close=number % 3 != 2)
    for number, (csat, nps) in enumerate(SURVEYS):
        conversation = waiting[number % len(waiting)] if waiting else None
        for stage, score in (("csat", csat), ("nps", nps)):
            await store.log_event(
                Event(
                    name="survey_answered",
                    conversation_id=conversation["_id"] if conversation else None,
                    customer_id=conversation["customer_id"] if conversation else None,
                    channel=conversation["channel"] if conversation else "rest",
                    data={"survey_id": f"SV-demo-{number}", "stage": stage, "score": score, "agent": DEMO_AGENT,
                          "queue": "general", "demo": True},
                )
            )  # fmt: skip
    log.info("quality demo: %d conversations, %d handed to %s", len(SCRIPTS), len(waiting), DEMO_AGENT)
    return len(SCRIPTS)


async def _agent_handles(handoff: HandoffDesk, conversation_id: str, *, close: bool) -> None:
    """What an agent does through the agent API: claim, answer, and (mostly) close."""
    try:
        claimed = await handoff.claim(conversation_id, DEMO_AGENT)
    except AgentActionRefused:
        return
    await handoff.answer(claimed, DEMO_AGENT, "您好，我是售后客服，马上为您处理。", client_message_id=new_id())
    if close:
        await handoff.hand_back(claimed, DEMO_AGENT, resolution="demo")
