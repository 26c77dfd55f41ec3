"""The HTTP side the gateway calls: JSON requests signed with the system's shared secret
(:mod:`downstream.signing`), with a bounded timeout. A connection failure or a 5xx is
:class:`DownstreamUnavailable` (try again later: every request carries an idempotency key, so a
retry never does a thing twice); a 4xx is :class:`DownstreamRefused` (retrying will not help).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import aiohttp

from downstream.signing import signed_headers
from errors import Conflict, Unavailable


class DownstreamUnavailable(Unavailable):
    """A downstream system did not answer, or failed; the request is retried later."""

    code = "downstream_unavailable"


class DownstreamRefused(Conflict):
    """A downstream system refused the request (it will not change its mind on a retry)."""

    code = "downstream_refused"


class SignedClient:
    def __init__(self, base_url: str, secret: str, *, timeout_seconds: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.secret = secret
        self.timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        headers = {"Content-Type": "application/json", **signed_headers(self.secret, body)}
        return await self._send("POST", path, body, headers)

    async def post_form(self, path: str, fields: dict[str, str]) -> dict[str, Any]:
        """A form-encoded request (``schema=json&param=…``, as the tracking-push APIs take them)."""
        body = urlencode(fields).encode("ascii")
        headers = {"Content-Type": "application/x-www-form-urlencoded", **signed_headers(self.secret, body)}
        return await self._send("POST", path, body, headers)

    async def get(self, path: str) -> dict[str, Any]:
        return await self._send("GET", path, b"", signed_headers(self.secret, b""))

    async def fetch(self, url: str, *, max_bytes: int) -> tuple[bytes, str]:
        """A file the system links to (a quality-check photo): its bytes and content type."""
        try:
            async with self._client().get(url, headers=signed_headers(self.secret, b"")) as response:
                if response.status >= 400:
                    raise DownstreamRefused(f"GET {url}: HTTP {response.status}")
                data = await response.content.read(max_bytes + 1)
                if len(data) > max_bytes:
                    raise DownstreamRefused(f"GET {url}: larger than {max_bytes} bytes")
                return data, response.content_type
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DownstreamUnavailable(f"GET {url}: {exc or type(exc).__name__}") from exc

    async def _send(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
        url = f"{self.base_url}{path}"
        try:
            async with self._client().request(method, url, data=body or None, headers=headers) as response:
                text = await response.text()
                if response.status >= 500:
                    raise DownstreamUnavailable(f"{method} {url}: HTTP {response.status}")
                try:
                    answer = json.loads(text) if text else {}
                except ValueError as exc:
                    raise DownstreamUnavailable(f"{method} {url}: the answer is not JSON") from exc
                if response.status >= 400:
                    detail = answer.get("message") or answer.get("detail") or text[:200]
                    raise DownstreamRefused(f"{method} {url}: HTTP {response.status}: {detail}")
                if not isinstance(answer, dict):
                    raise DownstreamUnavailable(f"{method} {url}: the answer is not a JSON object")
                return answer
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DownstreamUnavailable(f"{method} {url}: {exc or type(exc).__name__}") from exc
