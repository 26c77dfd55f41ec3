"""HTTP client for Rasa's ``POST /model/parse``."""

from __future__ import annotations

import itertools
import logging
from abc import ABC, abstractmethod
from typing import Any

import aiohttp
from pydantic import BaseModel, ConfigDict, Field

log = logging.getLogger(__name__)

FALLBACK_INTENT = "nlu_fallback"


class NluUnavailable(RuntimeError):
    """The NLU server could not be reached, timed out or answered with an error."""


class Intent(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str | None = None
    confidence: float = 0.0


class Entity(BaseModel):
    model_config = ConfigDict(extra="allow")

    entity: str
    value: Any
    start: int | None = None
    end: int | None = None
    extractor: str | None = None


class ParseResult(BaseModel):
    """Rasa's ``/model/parse`` response; unknown fields are kept so the raw shape round-trips."""

    model_config = ConfigDict(extra="allow")

    text: str
    intent: Intent = Field(default_factory=Intent)
    entities: list[Entity] = Field(default_factory=list)
    intent_ranking: list[Intent] = Field(default_factory=list)

    @property
    def intent_name(self) -> str | None:
        return self.intent.name

    def entity_values(self, name: str) -> list[Any]:
        return [e.value for e in self.entities if e.entity == name]

    def first_entity(self, name: str) -> Any | None:
        values = self.entity_values(name)
        return values[0] if values else None


class NluClient(ABC):
    """Turns text into a :class:`ParseResult`; raises :class:`NluUnavailable` when it cannot."""

    @abstractmethod
    async def parse(self, text: str, message_id: str | None = None) -> ParseResult: ...

    @abstractmethod
    async def ready(self) -> bool: ...

    def fallback_parse(self, text: str) -> ParseResult | None:
        """A rough reading for while :meth:`parse` raises :class:`NluUnavailable` (keywords), if any."""
        return None

    async def close(self) -> None:
        return None


class OfflineNlu(NluClient):
    """The NLU while no server is reachable yet (starting, or failed to start)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    async def parse(self, text: str, message_id: str | None = None) -> ParseResult:
        raise NluUnavailable(self.reason)

    async def ready(self) -> bool:
        return False


class RasaNluClient(NluClient):
    """Calls one or more Rasa servers (round-robin) started with ``--enable-api``."""

    def __init__(self, urls: list[str] | str, token: str | None = None, timeout: float = 5.0) -> None:
        self.urls = [u.rstrip("/") for u in ([urls] if isinstance(urls, str) else urls)]
        if not self.urls:
            raise ValueError("at least one Rasa server URL is needed")
        self.token = token
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._next_url = itertools.cycle(self.urls)
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        return self._session

    def _params(self) -> dict[str, str]:
        return {"token": self.token} if self.token else {}

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def ready(self) -> bool:
        """True when a server answers ``/status`` with a loaded model."""
        for url in self.urls:
            try:
                async with self._http().get(f"{url}/status", params=self._params()) as response:
                    if response.status == 200 and (await response.json()).get("model_file"):
                        return True
            except (aiohttp.ClientError, TimeoutError, ValueError):
                continue
        return False

    async def parse(self, text: str, message_id: str | None = None) -> ParseResult:
        body: dict[str, Any] = {"text": text}
        if message_id:
            body["message_id"] = message_id
        url = next(self._next_url)
        try:
            async with self._http().post(f"{url}/model/parse", json=body, params=self._params()) as response:
                if response.status != 200:
                    detail = (await response.text())[:300]
                    raise NluUnavailable(f"{url}/model/parse answered {response.status}: {detail}")
                payload = await response.json()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise NluUnavailable(f"{url}/model/parse failed: {exc!r}") from exc
        return ParseResult.model_validate(payload)
