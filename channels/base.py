"""The interface every channel adapter implements (after Rasa's ``rasa/core/channels``)."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from functools import partial
from typing import Any, ClassVar, Protocol

from aiohttp import web

from store.models import InboundMessage, Message

_dumps = partial(json.dumps, ensure_ascii=False)


def json_response(data: Any, status: int = 200) -> web.Response:
    """A JSON response with Chinese left readable (UTF-8), not \\u-escaped."""
    return web.json_response(data, status=status, dumps=_dumps)


class InboundHandler(Protocol):
    """Accepts one normalised inbound message and returns the replies of that turn.

    The message is persisted before the handler returns; a redelivery (same channel message id)
    is not stored again and returns the replies already given.
    """

    async def __call__(self, message: InboundMessage) -> list[Message]: ...


class InvalidInbound(ValueError):
    """A request a channel cannot turn into a message; becomes a 400 with a JSON error."""

    def __init__(self, code: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.extra = extra

    def response(self) -> web.Response:
        return json_response({"error": self.code, "detail": self.detail, **self.extra}, status=400)


class InputChannel(ABC):
    """Receives messages from one channel and registers its HTTP routes on the gateway."""

    name: ClassVar[str]
    replies_in_response: ClassVar[bool] = False
    """True for synchronous channels (REST): the turn's replies go back in the HTTP response,
    so they leave the outbox as delivered; other channels' replies wait for their sender."""

    @abstractmethod
    def routes(self, on_message: InboundHandler) -> list[web.RouteDef]:
        """The routes this channel serves; each calls ``on_message`` for every message."""
