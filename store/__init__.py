"""Conversation store: customers, conversations, messages and the event log, in MongoDB.

Owns the normalised message model every channel produces and consumes, the collections and
their indexes, idempotent persistence of inbound messages, and the embedded MongoDB-protocol
server used when no ``MONGODB_URI`` is configured.

Must not know about any particular channel's wire format, the NLU, or dialogue rules: it stores
what it is given and answers queries.

This package's top level is the model only (no driver): a channel importing ``store.models`` must not
pull pymongo in; the MongoDB side is ``store.mongo``.
"""

from store.models import (
    Attachment,
    Conversation,
    ConversationState,
    Customer,
    Direction,
    Event,
    InboundMessage,
    Message,
    OutboundMessage,
    QuickReply,
)

__all__ = [
    "Attachment",
    "Conversation",
    "ConversationState",
    "Customer",
    "Direction",
    "Event",
    "InboundMessage",
    "Message",
    "OutboundMessage",
    "QuickReply",
]
