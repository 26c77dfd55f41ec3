"""Dialogue: what the bot says and does in each turn of a conversation.

Owns the self-service flows (order lookup first), slot filling, the "not understood" counter,
the decision to hand off, and reply wording in the customer's language.

Must not know about channel wire formats, MongoDB or the Rasa server: it receives a parsed turn
and the conversation's slots, reads orders through the shop interface, asks the backoffice to
queue a hand-off, and returns replies and new slots.
"""

from dialogue.engine import DialogueEngine, Reply, TurnInput, TurnOutcome

__all__ = ["DialogueEngine", "Reply", "TurnInput", "TurnOutcome"]
