"""REST senders' session tokens, kept as a REST client keeps them (see ``channels/rest.py``): the
first answer to a sender carries ``X-Session-Token`` and every later message sends it back."""

from __future__ import annotations

from collections.abc import Mapping

from channels.rest import SESSION_HEADER


class RestSessions:
    def __init__(self) -> None:
        self.tokens: dict[str, str] = {}

    def headers(self, sender: str) -> dict[str, str]:
        token = self.tokens.get(sender)
        return {SESSION_HEADER: token} if token else {}

    def keep(self, sender: str, headers: Mapping[str, str]) -> None:
        if token := headers.get(SESSION_HEADER):
            self.tokens[sender] = token
