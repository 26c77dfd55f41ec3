"""Rate limits per client IP (webhooks) and per sender (inbound messages), through a real gateway
on loopback; the token bucket and the store's window counter on a controlled clock; the
per-sender limit across two gateways on one store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from channels.rest import SESSION_HEADER
from channels.telegram import SECRET_HEADER, WEBHOOK_PATH
from gateway import Gateway, GatewayBuilder, Settings, build_app
from gateway.limits import Rate, TokenBucketLimiter
from gateway.runtime import SENDER_COUNTS
from gateway.settings import GatewaySettings
from nlu import OfflineNlu
from store.mongo import ConversationStore
from store.rate_counts import FixedWindowCounts
from tests.helpers import post_rest
from tests.telegram_standin import BotApiStandIn, private_update, telegram_gateway

REST = "/webhooks/rest/webhook"
Client = TestClient[object, object]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_its_burst_then_says_how_long_to_wait_and_refills() -> None:
    clock = Clock()
    limiter = TokenBucketLimiter(Rate(per_minute=60, burst=3), clock=clock)
    assert [limiter.take("a") for _ in range(3)] == [None, None, None]
    wait = limiter.take("a")
    assert wait is not None and 0.9 < wait <= 1.0  # one token a second
    assert limiter.take("b") is None, "another key has its own bucket"
    clock.now += 1.0
    assert limiter.take("a") is None
    assert limiter.take("a") is not None
    clock.now += 3600
    assert [limiter.take("a") for _ in range(4)].count(None) == 3, "refills only up to the burst"


def test_the_number_of_buckets_is_bounded_and_zero_means_unlimited() -> None:
    limiter = TokenBucketLimiter(Rate(per_minute=1, burst=1), max_keys=50)
    for n in range(1000):
        limiter.take(f"key-{n}")
    assert len(limiter) == 50
    unlimited = TokenBucketLimiter(Rate(per_minute=0, burst=1))
    assert all(unlimited.take("a") is None for _ in range(100))


async def test_window_counts_are_atomic_start_again_and_never_go_back(store: ConversationStore) -> None:
    clock = Clock()
    counts = FixedWindowCounts(store.db, "counts_under_test", clock=clock)
    clock.now = 1_000_040.0  # 20 s into a 60 s window (windows are aligned to the epoch)
    first = await counts.add("a", 60)
    assert (first.count, first.seconds_left) == (1, 40.0)
    many = await asyncio.gather(*(counts.add("a", 60) for _ in range(30)))
    assert sorted(c.count for c in many) == list(range(2, 32)), "racing counts are each counted once"
    assert (await counts.add("b", 60)).count == 1, "another key has its own count"
    assert await counts.current("a") == 31
    clock.now += 40.0
    assert (await counts.add("a", 60)).count == 1, "a new window starts again"
    behind = FixedWindowCounts(store.db, "counts_under_test", clock=lambda: clock.now - 61)
    assert (await behind.add("a", 60)).count == 2, "a process whose clock is behind counts into the newer window"
    assert (await counts.add("a", 60)).count == 3
    clock.now += 3600
    assert await counts.current("a") == 0


async def serve(gateway: Gateway) -> AsyncIterator[Client]:
    async with TestClient(TestServer(build_app(gateway), host="127.0.0.1")) as http:
        yield http


def rest_gateway(store: ConversationStore, tmp_path: Path, **limits: object) -> Gateway:
    settings = Settings(gateway=GatewaySettings(var_dir=tmp_path / "var")).with_changes(**limits)
    return GatewayBuilder(settings).store(store).nlu(OfflineNlu("not needed")).build()


@pytest_asyncio.fixture
async def ip_limited(store: ConversationStore, tmp_path: Path) -> AsyncIterator[Client]:
    """Three requests per IP at once; loopback not exempt; the loopback peer is a trusted proxy."""
    gateway = rest_gateway(
        store, tmp_path, limits__ip_per_minute=6.0, limits__ip_burst=3, limits__ip_exempt=(),
        limits__trusted_proxies=("127.0.0.1",),
    )  # fmt: skip
    async for http in serve(gateway):
        yield http


async def test_an_address_over_its_limit_gets_429_with_retry_after(ip_limited: Client) -> None:
    client_a = {"X-Forwarded-For": "203.0.113.7"}
    for n in range(3):
        response = await ip_limited.post(REST, json={"sender": f"a-{n}", "message": "你好"}, headers=client_a)
        assert response.status == 200, await response.text()
    refused = await ip_limited.post(REST, json={"sender": "a-9", "message": "你好"}, headers=client_a)
    assert refused.status == 429
    assert int(refused.headers["Retry-After"]) >= 1
    body = await refused.json()
    error = body["error"]
    assert error["code"] == "rate_limited" and error["message"] and error["details"]["retry_after"] >= 1
    # Another customer behind the same proxy is not throttled for it.
    other = await ip_limited.post(
        REST, json={"sender": "b", "message": "你好"}, headers={"X-Forwarded-For": "198.51.100.2"}
    )
    assert other.status == 200


async def test_forwarded_for_is_believed_only_from_a_trusted_proxy(store: ConversationStore, tmp_path: Path) -> None:
    gateway = rest_gateway(store, tmp_path, limits__ip_per_minute=6.0, limits__ip_burst=2, limits__ip_exempt=())
    async for http in serve(gateway):
        statuses = [
            (await http.get("/webhooks/rest/", headers={"X-Forwarded-For": f"203.0.113.{n}"})).status for n in range(4)
        ]
        assert statuses == [200, 200, 429, 429], "a client cannot escape its limit by inventing addresses"


async def test_loopback_is_exempt_by_default(client: Client) -> None:
    statuses = {(await client.get("/webhooks/rest/")).status for _ in range(Settings().limits.ip_burst + 20)}
    assert statuses == {200}


async def test_one_sender_over_its_limit_gets_429_and_nothing_is_stored(
    store: ConversationStore, tmp_path: Path
) -> None:
    gateway = rest_gateway(store, tmp_path, limits__sender_per_minute=1.0, limits__sender_burst=2)
    async for http in serve(gateway):
        for n in range(2):
            assert (await post_rest(http, {"sender": "flood", "message": f"第{n}条"})).status == 200
        stored = await store.messages.count_documents({"direction": "in"})
        refused = await post_rest(http, {"sender": "flood", "message": "再来一条"})
        assert refused.status == 429 and int(refused.headers["Retry-After"]) >= 1
        assert (await refused.json())["error"]["code"] == "rate_limited"
        assert await store.messages.count_documents({"direction": "in"}) == stored
        assert (await http.post(REST, json={"sender": "calm", "message": "你好"})).status == 200


async def test_telegram_is_limited_per_chat_not_per_provider_address(
    store: ConversationStore, tmp_path: Path, standin: BotApiStandIn
) -> None:
    gateway = telegram_gateway(tmp_path, store, OfflineNlu("not needed"), standin, "s3cret")
    # One request per IP would throttle Telegram's few addresses at once; it must not apply here.
    gateway.settings = gateway.settings.with_changes(
        limits__ip_burst=1, limits__ip_exempt=(), limits__ip_per_minute=1.0
    )
    gateway.sender_limit.rate = Rate(per_minute=1.0, burst=2)
    async for http in serve(gateway):
        headers = {SECRET_HEADER: "s3cret"}
        answers = []
        for n in range(4):
            response = await http.post(WEBHOOK_PATH, json=private_update(9100 + n, 555, text="在吗"), headers=headers)
            assert response.status == 200, "Telegram always gets its 200 (it would redeliver otherwise)"
            answers.append(await response.json())
        assert [a.get("ignored") for a in answers] == [None, None, "rate_limited", "rate_limited"]
        other_chat = await http.post(WEBHOOK_PATH, json=private_update(9200, 556, text="你好"), headers=headers)
        assert other_chat.status == 200 and "ignored" not in await other_chat.json()
        assert await store.messages.count_documents({"direction": "in"}) == 3


async def test_the_sender_limit_holds_across_gateways_on_one_store(store: ConversationStore, tmp_path: Path) -> None:
    """Two gateways share nothing but the store, as two processes do: a sender's third message is
    refused by whichever of them receives it."""
    gateways = [
        rest_gateway(store, tmp_path / name, limits__sender_per_minute=1.0, limits__sender_burst=2)
        for name in ("a", "b")
    ]
    async for a in serve(gateways[0]):
        async for b in serve(gateways[1]):
            first = await post_rest(a, {"sender": "both", "message": "第一条"})
            assert first.status == 200
            session = {SESSION_HEADER: first.headers[SESSION_HEADER]}  # the sender's, valid on every gateway
            assert (await post_rest(b, {"sender": "both", "message": "第二条"}, **session)).status == 200
            for http in (a, b):
                refused = await post_rest(http, {"sender": "both", "message": "再来"}, **session)
                assert refused.status == 429 and int(refused.headers["Retry-After"]) >= 1
                assert (await refused.json())["error"]["code"] == "rate_limited"
            assert await store.db[SENDER_COUNTS].count_documents({}) == 1
            assert await store.messages.count_documents({"direction": "in"}) == 2
