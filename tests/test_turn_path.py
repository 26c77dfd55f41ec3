"""No scan on the turn path, whatever the store holds: every command a turn sends to the store
filters by equality on an indexed field (the embedded nx-27017 scans the whole collection
otherwise — a turn took 97 ms instead of 21 ms once 50,000 messages had been added, all of it in
one lookup by ``(channel, channel_message_id)``), and a plain turn keeps to its round-trip budget.

The check is structural (the filters against the collections' indexes), so it holds on real
MongoDB too and does not depend on how fast this machine is; ``bench/throughput.py`` measures the
latency with a filled store."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp.test_utils import TestClient
from pymongo import monitoring

from gateway import Gateway
from store.mongo import ConversationStore
from tests.selfservice import Customer

PLAIN_TURN_ROUND_TRIPS = 12
"""Store commands of a plain turn (a greeting, a status question with an order id): accept,
lease, understanding, reply, bookkeeping. The speed issue brings it to 5."""

FILTER_KEYS = {"find": "filter", "findAndModify": "query", "count": "query"}
MULTI_FILTER_KEYS = {"update": ("updates", "q"), "delete": ("deletes", "q")}


@dataclass(frozen=True)
class Command:
    name: str
    collection: str
    filters: tuple[dict[str, Any], ...]


class Recorder(monitoring.CommandListener):
    def __init__(self) -> None:
        self.database: str | None = None
        self.commands: list[Command] = []
        self.stream_requests: set[int] = set()
        self.streams: set[int] = set()
        """Change streams' cursors (watched since start-up, in any database): their getMores are
        the gateway waiting for work, not the turn's round trips."""

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        name = event.command_name
        if _in_background_task():
            return
        if name == "aggregate" and any("$changeStream" in stage for stage in event.command.get("pipeline", [])):
            self.stream_requests.add(event.request_id)
        if self.database is None or event.database_name != self.database:
            return
        if name == "getMore" and int(event.command["getMore"]) in self.streams:
            return
        collection = str(event.command.get("collection" if name == "getMore" else name, ""))
        filters: tuple[dict[str, Any], ...] = ()
        if name in FILTER_KEYS:
            filters = (dict(event.command.get(FILTER_KEYS[name]) or {}),)
        elif name in MULTI_FILTER_KEYS:
            field, key = MULTI_FILTER_KEYS[name]
            filters = tuple(dict(op.get(key) or {}) for op in event.command.get(field, []))
        self.commands.append(Command(name, collection, filters))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        if event.request_id in self.stream_requests:
            self.stream_requests.discard(event.request_id)
            self.streams.add(int(event.reply["cursor"]["id"]))

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        return None


def _in_background_task() -> bool:
    """Commands of the gateway's named background tasks (outbox senders, the downstream worker,
    the SLA monitor, lease renewers, recovery …) run on their own clocks and are not the turn's;
    a turn runs in the request's task and the unnamed tasks it starts ("Task-N")."""
    try:
        task = asyncio.current_task()
    except RuntimeError:
        return False
    return task is not None and not task.get_name().startswith("Task-")


RECORDER = Recorder()
monitoring.register(RECORDER)  # clients made after this (every test's store) report to it


@contextmanager
def recording(store: ConversationStore) -> Iterator[list[Command]]:
    RECORDER.database, RECORDER.commands = store.db.name, []
    try:
        yield RECORDER.commands
    finally:
        RECORDER.database = None


def _equality(value: Any) -> bool:
    if isinstance(value, dict):
        return set(value) <= {"$eq", "$in"} and bool(value)
    return True


async def _indexed_fields(store: ConversationStore, collection: str) -> set[str]:
    """Fields with an index of their own: nx-27017 uses single-field indexes only (a filter whose
    fields only lead a compound index, like the old ``(channel, channel_message_id)``, scans)."""
    info = await store.db[collection].index_information()
    return {str(spec["key"][0][0]) for spec in info.values() if len(spec["key"]) == 1} | {"_id"}


async def unindexed(store: ConversationStore, commands: list[Command]) -> list[str]:
    """Commands whose filter has no equality on a field with an index of its own."""
    found = []
    indexes: dict[str, set[str]] = {}
    for command in commands:
        for where in command.filters:
            if command.collection not in indexes:
                indexes[command.collection] = await _indexed_fields(store, command.collection)
            usable = {k for k, v in where.items() if not k.startswith("$") and _equality(v)}
            if not usable & indexes[command.collection]:
                found.append(f"{command.name} {command.collection} {where}")
    return found


def command_listing(commands: list[Command]) -> str:
    """One line per command (name, collection, filters): what a failing budget shows."""
    return "\n".join(f"  {c.name:<14} {c.collection:<20} {c.filters}" for c in commands)


async def test_a_plain_turn_uses_indexes_only_and_keeps_its_round_trip_budget(
    client: TestClient[object, object], gateway: Gateway, store: ConversationStore
) -> None:
    customer = Customer(client, gateway)
    order = await customer.order("shipped")
    await customer.say("你好")  # the customer's first message opens their session and conversation
    for text in ("你好", f"帮我查一下订单{order.order_id}到哪了"):
        with recording(store) as commands:
            await customer.say(text)
        listing = command_listing(commands)
        print(f"\n{text}: {len(commands)} store commands\n{listing}")  # shown with pytest -s
        assert await unindexed(store, commands) == []
        assert len(commands) <= PLAIN_TURN_ROUND_TRIPS, listing


async def test_self_service_turns_and_redeliveries_use_indexes_only(
    client: TestClient[object, object], gateway: Gateway, store: ConversationStore
) -> None:
    customer = Customer(client, gateway)
    await customer.order("paid")
    await customer.order("delivered", delivered_days_ago=2)
    with recording(store) as commands:
        for text in ("我要退货", "1", "不想要了", "明天上午", "确认", "我要投诉快递员态度差", "转人工"):
            await customer.say(text)
        await customer.chat.send("重发一次", message_id="same")
        await customer.chat.send("重发一次", message_id="same")
    assert await unindexed(store, commands) == []
