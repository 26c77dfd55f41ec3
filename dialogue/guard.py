"""The write invariant: the bot changes an order or a request only on a target the customer named
and confirmed.

Every write a flow makes passes :func:`authorise` first. A change to money, goods or an order
(any after-sales request, an address or delivery-time change, a cancellation, withdrawing or
changing a request) needs the customer's
"yes" in this very turn to a confirmation that named exactly this action on exactly this order,
item and request — asked by this flow, in this conversation, in the bot's previous message.
Bookkeeping (recording an urge, opening a courier inquiry or a complaint ticket) needs only a
target the customer named, which the flow passes on. Anything else is a bug, and it fails loudly
instead of writing.
"""

from __future__ import annotations

from typing import Any

from dialogue.turn import Turn
from errors import OperationalError
from shop.aftersales import RequestType

CONFIRMED_ACTIONS = frozenset(
    {*(t.value for t in RequestType), "change_address", "change_delivery_time", "withdraw", "change_request"}
)
"""Every after-sales request type, an order's address or delivery time, withdrawing or changing a request."""
BOOKKEEPING = frozenset({"urge", "courier_inquiry", "complaint"})


class UnconfirmedWrite(OperationalError):
    """A flow tried to write something the customer had not named and confirmed."""

    code = "unconfirmed_write"


def subject(action: str, order_id: str, *, sku: str | None = None, request_id: str | None = None) -> dict[str, Any]:
    """What a confirmation is about, as it is stored with the question and compared with the write."""
    return {"action": action, "order_id": order_id, "sku": sku, "request_id": request_id}


def authorise(
    turn: Turn,
    action: str,
    order_id: str,
    *,
    sku: str | None = None,
    request_id: str | None = None,
    named: bool = False,
) -> None:
    """Raise :class:`UnconfirmedWrite` unless this write is one the customer confirmed (or, for
    bookkeeping, ``named``) in this turn."""
    wanted = subject(action, order_id, sku=sku, request_id=request_id)
    if action in BOOKKEEPING:
        if not named:
            raise UnconfirmedWrite(f"{action} on {order_id}: the customer did not name it")
        return
    if action not in CONFIRMED_ACTIONS:
        raise UnconfirmedWrite(f"{action} is no write the dialogue makes")
    confirmed = turn.confirmed
    if confirmed is None:
        raise UnconfirmedWrite(f"{action} on {order_id}: the customer did not confirm it")
    if {k: confirmed.get(k) for k in wanted} != wanted:
        raise UnconfirmedWrite(f"{action} on {order_id}: the customer confirmed {confirmed}, not this")
