"""What the gateway answers while it is starting, decided in one place.

The web app's middleware (:func:`gateway.app.while_starting`) answers every request but ``/health``
with :class:`GatewayStarting` until start-up has wired the gateway's parts (the store and what is
built on it, the outbox, the channels). Handlers therefore take the parts as given: :func:`wired`
only tells the type checker so, and in the one case it can still meet None (a part used outside a
request before start-up, a bug) raises the same error the middleware answers with.
"""

from __future__ import annotations

from typing import TypeVar

from errors import Unavailable

RETRY_AFTER_SECONDS = 5
"""What a client is told to wait before it asks again (``Retry-After``)."""

T = TypeVar("T")


class GatewayStarting(Unavailable):
    """The gateway is starting"""

    code = "starting"

    def __init__(self) -> None:
        super().__init__("the gateway is starting", retry_after=RETRY_AFTER_SECONDS)


def wired(part: T | None) -> T:
    """A part start-up wires, which every request the middleware lets through has."""
    if part is None:
        raise GatewayStarting()
    return part
