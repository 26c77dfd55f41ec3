"""A message built to freeze the gateway (found by an outside probe: 1,000 × 市 held the event loop
for 450 s in the bare-address pattern, and every restarted or other process froze on it again)."""

from __future__ import annotations

import asyncio
import time

from aiohttp.test_utils import TestClient

from gateway import Gateway, GatewayBuilder, Settings
from gateway.turns import MAX_TURN_STARTS
from nlu import NluClient, ParseResult
from store import InboundMessage
from store.mongo import ConversationStore
from tests.helpers import Chat, unique_sender

HOSTILE = ["市" * 4000, "市区路" * 1333, "去" * 4000, "1" * 4000, "<div" * 1000, "\n" * 3999 + "x"]


async def test_hostile_messages_are_answered_and_health_keeps_answering(
    client: TestClient[object, object], gateway: Gateway
) -> None:
    slowest_health = 0.0
    done = asyncio.Event()

    async def watch_health() -> None:
        nonlocal slowest_health
        while not done.is_set():
            started = time.perf_counter()
            response = await client.get("/health")
            assert response.status == 200
            slowest_health = max(slowest_health, time.perf_counter() - started)
            await asyncio.sleep(0.01)

    watcher = asyncio.create_task(watch_health())
    try:
        for text in HOSTILE:
            chat = Chat(client, unique_sender())
            started = time.perf_counter()
            replies = await chat.send(text)
            took = time.perf_counter() - started
            assert replies and all(r["text"] for r in replies)
            assert took < 10, f"{text[:6]!r}… took {took:.1f} s (the catastrophic pattern took minutes)"
    finally:
        done.set()
        await watcher
    assert slowest_health < 2, f"/health waited {slowest_health:.2f} s while hostile text was read"


class CountingNlu(NluClient):
    def __init__(self) -> None:
        self.calls = 0

    async def parse(self, text: str, message_id: str | None = None) -> ParseResult:
        self.calls += 1
        raise AssertionError("a quarantined message must not be read again")

    async def ready(self) -> bool:
        return True


async def test_a_message_whose_turn_killed_its_process_twice_is_quarantined_not_run_again(
    settings: Settings, store: ConversationStore
) -> None:
    """Two processes died reading it (each start was counted before it ran): the next process to
    find it sets it aside instead of dying a third time."""
    accepted = await store.accept_inbound(
        InboundMessage(channel="rest", sender_id="killer", channel_message_id="killer:1", text="市" * 1000)
    )
    for _ in range(MAX_TURN_STARTS):
        await store.start_turn(accepted.message.id)
    nlu = CountingNlu()
    gateway = GatewayBuilder(settings).store(store).nlu(nlu).build()
    await gateway.start()
    try:
        message = await store.messages.find_one({"_id": accepted.message.id})
        assert message is not None and message["quarantined"]
        assert nlu.calls == 0
        (notice,) = await store.replies_to(accepted.message.id)
        assert "人工" in notice.text
        assert await store.events.count_documents({"name": "message_quarantined"}) == 1
        assert gateway.turns is not None
        assert await gateway.turns.recover() == 0, "a later pass leaves it alone"
    finally:
        await gateway.stop()
