"""Rate limits: token buckets per key, which address a request comes from (behind a trusted
proxy), the per-IP limit on inbound webhooks (aiohttp middleware) and the per-sender limit on
inbound messages.

The per-IP buckets are in each process's memory on purpose: checked on every request before
the store is touched, they cost nothing and keep working while MongoDB is slow or down. They
are the inner wall: with N gateway processes a client gets up to N times the limit, so the
proxy in front limits per address across processes (nginx ``limit_req``, ``run.py cluster``
and ``deploy/nginx/``). The per-sender limit is counted in the store (a counter per sender and
window, :class:`WindowCounter`), so it holds however many processes a sender's messages reach.

Must not know channels' wire formats, the store or the dialogue: it sees paths, addresses,
(channel, sender id) keys and a counter.
"""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web
from aiohttp.typedefs import Handler

from channels.base import SenderThrottled
from errors import TooManyRequests

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class Rate:
    """``per_minute`` requests a minute on average, up to ``burst`` at once; 0 per minute is no limit."""

    per_minute: float
    burst: int

    @property
    def unlimited(self) -> bool:
        return self.per_minute <= 0


class TokenBucketLimiter:
    """One token bucket per key; a request takes a token, tokens come back at the rate.

    At most ``max_keys`` buckets are kept (least recently used dropped first), so a flood of
    distinct keys cannot exhaust memory; a dropped key starts again with a full bucket.
    """

    def __init__(self, rate: Rate, *, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key → (tokens, when)

    def take(self, key: str) -> float | None:
        """None when allowed; otherwise the seconds until the next request would be."""
        if self.rate.unlimited:
            return None
        now = self.clock()
        per_second = self.rate.per_minute / 60.0
        tokens, when = self._buckets.pop(key, (float(self.rate.burst), now))
        tokens = min(float(self.rate.burst), tokens + (now - when) * per_second)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return None if allowed else (1.0 - tokens) / per_second

    def __len__(self) -> int:
        return len(self._buckets)


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """``("10.0.0.0/8", "192.168.1.7")`` → networks (the settings' comma-separated lists)."""
    return tuple(ipaddress.ip_network(value.strip(), strict=False) for value in values if value.strip())


class ClientAddress:
    """The address a request comes from. ``X-Forwarded-For`` is believed only when the direct
    peer is a configured trusted proxy (anyone else could write any address there), and then
    the right-most entry that is not itself a trusted proxy is the client."""

    def __init__(self, trusted_proxies: Iterable[Network] = ()) -> None:
        self.trusted = tuple(trusted_proxies)

    def of(self, request: web.Request) -> str:
        peer = request.remote or ""
        if not self.trusted or not self._is_trusted(peer):
            return peer
        hops = [h.strip() for h in ",".join(request.headers.getall("X-Forwarded-For", [])).split(",") if h.strip()]
        for hop in reversed(hops):
            if not self._is_trusted(hop):
                return hop if _address(hop) is not None else peer
        return peer

    def _is_trusted(self, value: str) -> bool:
        address = _address(value)
        return address is not None and any(address in network for network in self.trusted)


CLIENT_ADDRESS = web.AppKey("client_address", ClientAddress)


def client_address(request: web.Request) -> str:
    """The client's address as the app's trusted proxies tell it (one place for every route: the
    rate limits, the sign-in throttle, the audit)."""
    addresses = request.config_dict.get(CLIENT_ADDRESS)
    return addresses.of(request) if addresses is not None else request.remote or ""


def _address(value: str) -> Address | None:
    try:
        return ipaddress.ip_address(value.strip("[]"))
    except ValueError:
        return None


class IpRateLimit:
    """Per client IP on the webhook paths given (not on the providers' webhooks: Telegram and
    Twilio call from a few addresses of theirs, which a per-IP limit would throttle for
    everyone; their customers are limited per sender instead). Addresses in ``exempt`` (by
    default loopback, where a local bench or a same-host proxy without forwarding comes from)
    are not limited."""

    def __init__(
        self, limiter: TokenBucketLimiter, addresses: ClientAddress, paths: tuple[str, ...], exempt: Iterable[Network]
    ) -> None:
        self.limiter = limiter
        self.addresses = addresses
        self.paths = paths
        self.exempt = tuple(exempt)

    def applies_to(self, path: str) -> bool:
        return path.startswith(self.paths)

    def retry_after(self, request: web.Request) -> float | None:
        if not self.applies_to(request.path):
            return None
        client = self.addresses.of(request)
        address = _address(client)
        if address is not None and any(address in network for network in self.exempt):
            return None
        return self.limiter.take(client)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        wait = self.retry_after(request)
        if wait is not None:
            raise TooManyRequests(
                "too many requests from this address; slow down", code="rate_limited", retry_after=wait
            )
        return await handler(request)


class Counted(Protocol):
    @property
    def count(self) -> int:
        """Counts of the key in its window, this one included."""
        ...

    @property
    def seconds_left(self) -> float:
        """Until the window ends."""
        ...


class WindowCounter(Protocol):
    """Counts per key in fixed windows, shared by every process (``store.rate_counts``)."""

    async def add(self, key: str, window_seconds: float) -> Counted: ...


class SenderRateLimit:
    """Per (channel, sender id) on inbound messages, whatever process or address they come
    through: at most ``burst`` messages in each window of ``burst / per_minute`` minutes (30 in
    30 s by default), counted in the store. Raises :class:`SenderThrottled`; each channel answers
    it in its own way (429, SMTP 451 …). Until :meth:`count_with` gives it a counter (the store
    is not open yet) nothing is limited: no message can be stored then either."""

    def __init__(self, rate: Rate, exempt_channels: Iterable[str] = ()) -> None:
        self.rate = rate
        self.exempt_channels = frozenset(exempt_channels)
        self.counter: WindowCounter | None = None

    @property
    def window_seconds(self) -> float:
        """How long one window lasts; meaningless when the rate is unlimited."""
        return 60.0 * self.rate.burst / self.rate.per_minute if not self.rate.unlimited else 60.0

    def count_with(self, counter: WindowCounter) -> None:
        self.counter = counter

    async def check(self, channel: str, sender_id: str) -> None:
        if channel in self.exempt_channels or self.rate.unlimited or self.counter is None:
            return
        # ":" cannot be part of a channel's name; NUL would be cut by the embedded store's index.
        counted = await self.counter.add(f"{channel}:{sender_id}", self.window_seconds)
        if counted.count > self.rate.burst:
            raise SenderThrottled(counted.seconds_left)
