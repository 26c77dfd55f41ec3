"""Does a turn stay as fast when the store holds a year of conversations? And what does each kind
of store operation cost on the embedded store (nx-27017)?

Prints, in one run:
  1. what each operation kind costs on nx-27017 (insert, find by ``_id``, find by an indexed field,
     update by ``_id``, ``find_one_and_update`` by ``_id``, and — for contrast — a find on a field
     without an index of its own), on the empty store and again on the filled one;
  2. plain REST turns (a greeting, a status question with an order id; sequential, through the real
     Rasa server and the REST channel) on the empty store: p50 / p95 and store round trips per turn;
  3. the store filled by this script — copies of the documents those turns stored, with new keys —
     to ``--messages`` messages (default 200,000) with half as many events and a fifth as many
     conversations, customers and orders (progress on stderr);
  4. the same turns again, and the p50 ratio against the target: within 20 % of the empty store's.

On a real MongoDB replica set every operation here is sub-millisecond and the figures in (1) do
not apply; what carries over is the access pattern: equality on indexed keys only (see
``tests/test_turn_path.py``), so the turn does not grow with the store there either.

    .venv/bin/python bench/store_growth.py [--messages 200000] [--turns 200]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway import Gateway, GatewayBuilder, Settings, build_app
from gateway.settings import GatewaySettings
from nlu import NluProject, RasaNluClient
from nlu.server import EmbeddedRasaServer
from nlu.understanding import UnderstandingClient
from store.embedded import EmbeddedMongo
from store.mongo import ConversationStore, new_id
from tests.helpers import CUSTOMER_TOKEN_SECRET
from tests.selfservice import Customer

GROWTH_TARGET = 0.20
"""A turn's p50 on the filled store may exceed the empty store's by at most this share."""
OPERATIONS = 200
BATCH = 2_000


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[int(share * (len(ordered) - 1))] if ordered else 0.0


async def timed(repeat: int, operation: Callable[[int], Awaitable[object]]) -> list[float]:
    times = []
    for n in range(repeat):
        start = time.perf_counter()
        await operation(n)
        times.append((time.perf_counter() - start) * 1000)
    return times


async def operation_costs(store: ConversationStore) -> dict[str, list[float]]:
    """Each operation kind, ``OPERATIONS`` times, in a scratch collection shaped like ``messages``
    (and one query on the real messages, to show what a scan costs at this size)."""
    scratch = store.db[f"bench_ops_{uuid.uuid4().hex[:8]}"]
    await scratch.create_index("conversation_id")
    ids = [new_id() for _ in range(OPERATIONS)]
    conversations = [new_id() for _ in range(OPERATIONS // 10)]  # ten messages each, like a short chat

    def doc(n: int) -> dict[str, Any]:
        return {"_id": ids[n], "conversation_id": conversations[n // 10], "text": "帮我查一下订单",
                "direction": "in", "processed": False, "n": n}  # fmt: skip

    costs = {
        "insert one": await timed(OPERATIONS, lambda n: scratch.insert_one(doc(n))),
        "find by _id": await timed(OPERATIONS, lambda n: scratch.find_one({"_id": ids[n]})),
        "find by an indexed field (10 documents)": await timed(
            OPERATIONS, lambda n: scratch.find({"conversation_id": conversations[n // 10]}).to_list(None)
        ),
        "update by _id": await timed(OPERATIONS, lambda n: scratch.update_one({"_id": ids[n]}, {"$set": {"p": 1}})),
        "find_one_and_update by _id": await timed(
            OPERATIONS, lambda n: scratch.find_one_and_update({"_id": ids[n]}, {"$inc": {"claims": 1}})
        ),
        "find by an unindexed field (messages)": await timed(
            20, lambda n: store.messages.find_one({"text": f"no such text {n}"})
        ),
    }
    await scratch.drop()
    return costs


async def turns(gateway: Gateway, http: TestClient[Any, Any], count: int) -> tuple[list[float], list[float]]:
    """``count`` sequential plain turns from fresh customers (a greeting, then a status question
    with the order id): their wall times, and the store round trips the gateway counted."""
    times: list[float] = []
    assert gateway.turns is not None
    timings = gateway.turns.timings
    before = timings.turns
    customer: Customer | None = None
    order_id = ""
    for n in range(count):
        if n % 10 == 0:  # a new customer now and then, so conversations stay short and realistic
            customer = Customer(http, gateway)
            order_id = (await customer.order("shipped")).order_id
            await customer.say("你好")
        assert customer is not None
        text = "你好" if n % 2 else f"帮我查一下订单{order_id}到哪了"
        start = time.perf_counter()
        await customer.say(text)
        times.append((time.perf_counter() - start) * 1000)
    counted = min(timings.turns - before, len(timings.round_trips))
    trips = list(timings.round_trips)[len(timings.round_trips) - counted :]
    return times, [float(t) for t in trips]


def _copy(doc: dict[str, Any], n: int, renames: dict[str, str]) -> dict[str, Any]:
    copied = dict(doc)
    copied["_id"] = new_id() if isinstance(doc["_id"], str) and len(doc["_id"]) == 24 else f"{doc['_id']}~{n}"
    for field, prefix in renames.items():
        if field in copied:
            copied[field] = f"{prefix}{n}"
    return copied


async def fill(store: ConversationStore, messages: int) -> dict[str, int]:
    """Copies of the stored documents with new keys until ``messages`` messages are stored, with
    half as many events and a fifth as many conversations, customers and orders."""
    targets = {
        "messages": messages, "message_keys": messages, "events": messages // 2,
        "conversations": messages // 5, "customers": messages // 5, "orders": messages // 5,
    }  # fmt: skip
    renames: dict[str, dict[str, str]] = {
        "messages": {"channel_message_id": "copy-", "conversation_id": "conv-copy-"},
        "message_keys": {},
        "events": {"conversation_id": "conv-copy-"},
        "conversations": {"open_key": "closed-copy-", "customer_id": "customer-copy-"},
        "customers": {},
        "orders": {"order_id": "9000"},
    }
    filled: dict[str, int] = {}
    for name, target in targets.items():
        collection = store.db[name]
        samples = await collection.find({}).to_list(200)
        if not samples:
            continue
        have = await collection.estimated_document_count()
        n = 0
        started = time.perf_counter()
        while have < target:
            batch = []
            for _ in range(min(BATCH, target - have)):
                doc = _copy(samples[n % len(samples)], n, renames[name])
                if name == "customers":
                    doc["identities"] = {"phone": f"17{n:09d}"}
                    for field in [f for f in doc if f.startswith("identity_")]:
                        doc.pop(field)
                if name == "conversations":
                    doc["state"] = "closed"
                batch.append(doc)
                n += 1
            await collection.insert_many(batch, ordered=False)
            have += len(batch)
            rate = n / max(time.perf_counter() - started, 1e-6)
            print(f"\r  filling {name}: {have:,}/{target:,} ({rate:,.0f} docs/s)", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        filled[name] = have
    return filled


async def settle(store: ConversationStore, quiet_insert_ms: float, limit: float = 120.0) -> float:
    """Wait until the store is as quick as before the fill: the running gateway follows inserts
    through change streams, so a bulk fill leaves it (and nx-27017) busy for a while — a burst no
    real day has. Returns the seconds waited."""
    probe = store.db[f"bench_settle_{uuid.uuid4().hex[:8]}"]
    started = time.perf_counter()
    while time.perf_counter() - started < limit:
        times = await timed(20, lambda n: probe.insert_one({"n": n}))
        if statistics.median(times) <= 2 * quiet_insert_ms:
            break
        await asyncio.sleep(2)
    await probe.drop()
    return time.perf_counter() - started


def print_costs(label: str, costs: dict[str, list[float]]) -> None:
    print(f"\n{label}")
    print(f"  {'operation':<40} {'p50 ms':>8} {'p95 ms':>8}")
    for name, times in costs.items():
        print(f"  {name:<40} {statistics.median(times):8.2f} {percentile(times, 0.95):8.2f}")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=200_000, help="messages in the filled store")
    parser.add_argument("--turns", type=int, default=200, help="sequential turns per measurement")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        var = Path(tmp)
        mongo = EmbeddedMongo(var / "mongo")
        await mongo.start()
        project = NluProject(var_dir=var / "rasa")
        print("training or loading the NLU model …", file=sys.stderr, flush=True)
        rasa = EmbeddedRasaServer(project, project.train(quiet=True))
        await rasa.start()
        nlu = UnderstandingClient(RasaNluClient(rasa.url, rasa.token, timeout=30))
        store = ConversationStore.from_uri(mongo.uri, database="growth")
        await store.ensure_indexes()
        settings = Settings(gateway=GatewaySettings(var_dir=var / "gateway")).with_channel(
            "rest", customer_token_secret=CUSTOMER_TOKEN_SECRET
        )
        gateway = GatewayBuilder(settings).store(store).nlu(nlu).build()
        try:
            async with TestClient(TestServer(build_app(gateway))) as http:
                await turns(gateway, http, 20)  # warm-up: caches, first parses
                empty_costs = await operation_costs(store)
                empty, trips = await turns(gateway, http, args.turns)
                started = time.perf_counter()
                filled = await fill(store, args.messages)
                fill_seconds = time.perf_counter() - started
                settled = await settle(store, statistics.median(empty_costs["insert one"]))
                full_costs = await operation_costs(store)
                full, full_trips = await turns(gateway, http, args.turns)
        finally:
            await store.close()
            await nlu.close()
            await rasa.stop()
            await mongo.stop()

    print_costs("nx-27017, cost per operation on the empty store", empty_costs)
    print_costs(f"nx-27017, cost per operation with {filled.get('messages', 0):,} messages stored", full_costs)
    print(f"\nfilled in {fill_seconds:.0f} s: " + ", ".join(f"{k} {v:,}" for k, v in filled.items()))
    print(f"  then {settled:.0f} s until the store answered inserts as quickly as before (change streams drained)")
    print(f"\nplain REST turns, sequential ({args.turns} each)")
    print(f"  {'store':<28} {'p50 ms':>8} {'p95 ms':>8} {'round trips p50':>16}")
    for label, times, counts in (("empty", empty, trips), (f"{filled.get('messages', 0):,} messages", full,
                                                           full_trips)):  # fmt: skip
        median_trips = statistics.median(counts) if counts else float("nan")
        print(f"  {label:<28} {statistics.median(times):8.1f} {percentile(times, 0.95):8.1f} {median_trips:16.0f}")
    growth = statistics.median(full) / statistics.median(empty) - 1
    verdict = "met" if growth <= GROWTH_TARGET else "NOT met"
    print(f"\n  p50 growth {growth:+.1%} (target ≤ +{GROWTH_TARGET:.0%}: {verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
