"""Dialogue: what the bot says and does in each turn of a conversation.

Owns the self-service flows (``dialogue.flows``, one form per after-sales task), slot filling,
the "not understood" counter, the hand-off triggers (including negative-emotion cues), the
after-sales knowledge base, and reply wording in the customer's language (spoken prompts too).

Must not know about channel wire formats, MongoDB or the Rasa server: it receives a parsed turn
and the conversation's slots, reads and changes orders through the shop interface, records
after-sales requests and tickets through their services, asks the backoffice to queue a
hand-off, and returns replies and new slots.
"""

from dialogue.engine import DialogueEngine, Reply, TurnInput, TurnOutcome

__all__ = ["DialogueEngine", "Reply", "TurnInput", "TurnOutcome"]
