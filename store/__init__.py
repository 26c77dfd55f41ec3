"""Conversation store: customers, conversations, messages and the event log, in MongoDB.

Owns the normalised message model every channel produces and consumes, the collections and
their indexes, idempotent persistence of inbound messages, and the embedded MongoDB-protocol
server used when no ``MONGODB_URI`` is configured.

Must not know about any particular channel's wire format, the NLU, or dialogue rules: it stores
what it is given and answers queries.
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
from store.mongo import ConversationStore, InboundReceipt, MergeRefused, stored_datetime

__all__ = [
    "Attachment",
    "Conversation",
    "ConversationState",
    "ConversationStore",
    "Customer",
    "Direction",
    "Event",
    "InboundMessage",
    "InboundReceipt",
    "MergeRefused",
    "Message",
    "OutboundMessage",
    "QuickReply",
    "stored_datetime",
]
