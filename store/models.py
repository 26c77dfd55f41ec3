"""The normalised data model shared by every channel and layer (pydantic v2).

A channel adapter turns whatever arrives into an :class:`InboundMessage` and turns an
:class:`OutboundMessage` into whatever its wire format needs. Nothing here knows a wire format.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from errors import UserError

MAX_TEXT_CHARS = 4000
"""Longest message text accepted from any channel (about two screens of chat)."""


def utcnow() -> datetime:
    # MongoDB stores milliseconds; truncate so a round-trip compares equal.
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class MediaRejected(UserError):
    """An attachment refused: ``reason`` (its ``code`` too) is ``too_large``, ``type_not_allowed``
    or ``storage_full`` (the quota or the disk is full: nothing is wrong with the file, it cannot
    be kept now).

    Here, with the model, rather than in ``store.media``: channels raise and catch it without the
    media store's driver."""

    code = "media_rejected"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message, code=reason)
        self.reason = reason


class Direction(StrEnum):
    INBOUND = "in"
    OUTBOUND = "out"


class ConversationState(StrEnum):
    BOT = "bot"
    WAITING_AGENT = "waiting_agent"
    AGENT = "agent"
    CLOSED = "closed"


class Attachment(BaseModel):
    """Metadata of a file that came with a message; the bytes live in the media store."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(description="image, audio, document …")
    content_type: str | None = None
    url: str | None = None
    media_id: str | None = None
    filename: str | None = None
    size: int | None = None


class QuickReply(BaseModel):
    """A choice offered to the customer; ``payload`` is sent back as the message text."""

    title: str
    payload: str


class InboundMessage(BaseModel):
    """What a channel adapter hands to the gateway for every customer message."""

    model_config = ConfigDict(extra="forbid")

    channel: str = Field(min_length=1, max_length=32)
    sender_id: str = Field(min_length=1, max_length=256, description="the customer's id on that channel")
    channel_message_id: str = Field(
        min_length=1,
        max_length=512,
        description="unique within the channel; a redelivery carries the same id and is stored once",
    )
    text: str = Field(default="", max_length=MAX_TEXT_CHARS)
    attachments: list[Attachment] = Field(default_factory=list)
    received_at: datetime = Field(default_factory=utcnow)
    profile: dict[str, str] = Field(
        default_factory=dict,
        description="identities the channel vouches for, e.g. phone or email, used to link the customer",
    )
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("text")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()


class OutboundMessage(BaseModel):
    """A reply for the customer, addressed to the channel the conversation is on."""

    model_config = ConfigDict(extra="forbid")

    channel: str
    recipient_id: str
    conversation_id: str
    text: str
    quick_replies: list[QuickReply] = Field(default_factory=list)
    in_reply_to: str | None = Field(default=None, description="id of the inbound message this answers")
    author: str = Field(default="bot", description="bot, agent:<id> or system")


class Message(BaseModel):
    """A stored message, either direction."""

    id: str
    conversation_id: str
    customer_id: str
    channel: str
    direction: Direction
    text: str
    attachments: list[Attachment] = Field(default_factory=list)
    quick_replies: list[QuickReply] = Field(default_factory=list)
    channel_message_id: str | None = None
    in_reply_to: str | None = None
    author: str = "customer"
    recipient_id: str | None = Field(default=None, description="outbound: the channel's id of the customer")
    created_at: datetime
    processed: bool = True
    delivered: bool = False
    read: bool = Field(default=False, description="outbound: the customer's client reported it seen")
    attempts: int = Field(default=0, description="outbound: failed send attempts so far")
    failed: bool = Field(default=False, description="outbound: given up (permanent error or too many attempts)")
    metadata: dict[str, Any] = Field(default_factory=dict, description="inbound: what the channel added")
    understanding: dict[str, Any] | None = None
    """For inbound text: what the NLU made of it (normalised text, language, intent, entities).

    ``text`` stays exactly as the customer sent it.
    """


class Customer(BaseModel):
    id: str
    name: str | None = None
    identities: dict[str, str] = Field(
        default_factory=dict, description="channel-scoped ids: phone, email, telegram, app, rest …"
    )
    language: str | None = None
    created_at: datetime
    half_done_forms: dict[str, int] = Field(
        default_factory=dict,
        description="conversations of this customer that may hold a half-done bot flow (id → when flagged, epoch "
        "ms): flagged before the flow's slots are written, so a turn on another channel looks for one to resume "
        "only when there is a flag",
    )


class Conversation(BaseModel):
    id: str
    customer_id: str
    channel: str
    sender_id: str
    state: ConversationState = ConversationState.BOT
    slots: dict[str, Any] = Field(default_factory=dict)
    language: str = "zh"
    created_at: datetime
    updated_at: datetime
    handed_off_at: datetime | None = None
    agent_id: str | None = Field(default=None, description="the agent who owns it while state is agent")
    queue: str | None = Field(default=None, description="the skill group it was transferred to, if any")
    handoff_reason: str | None = None
    handoff_summary: dict[str, Any] | None = Field(
        default=None, description="what the agent is shown on taking it: customer, orders, intents, slots, requests"
    )
    awaiting: dict[str, dict[str, int]] = Field(
        default_factory=dict,
        description="what may wait for this customer's next message, by kind (tickets, surveys): id → the value "
        "it was flagged with; flagged before the write that makes it wait, so a turn looks only for flagged things",
    )


class Event(BaseModel):
    """One line of the metrics event log (``nlu_parsed``, ``handed_off`` …)."""

    name: str
    conversation_id: str | None = None
    customer_id: str | None = None
    channel: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    at: datetime = Field(default_factory=utcnow)
