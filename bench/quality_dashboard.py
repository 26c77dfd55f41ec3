"""Time the quality dashboard's summary over synthetic events (default 20,000) on the embedded
nx-27017 server: one report (all metrics) and its five groupings; then the problem analytics
(tickets by category and SKU, knowledge-base misses clustered, IVR per scenario and nuisance
calls, refund records searched by order and by status) over synthetic tickets, events and
requests (``--tickets``, default 2,000)."""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from quality.analytics import ivr_report, knowledge_misses, problems_report, refund_records
from quality.metrics import DIMENSIONS, QualityFilter, quality_report
from store.embedded import EmbeddedMongo
from store.mongo import ConversationStore

INTENTS = ["order_status", "refund", "return_refund", "complaint", "invoice", "urge"]
CHANNELS = ["rest", "app", "sms", "telegram", "email"]


def synthetic(events: int, now: datetime) -> tuple[list[dict], list[dict]]:
    rng = random.Random(7)
    docs, messages = [], []
    conversation = 0
    while len(docs) < events:
        conversation += 1
        cid, channel = f"c{conversation}", rng.choice(CHANNELS)
        start = now - timedelta(minutes=rng.randrange(60 * 24 * 29))
        base = {"conversation_id": cid, "customer_id": f"cu{conversation}", "channel": channel}
        docs.append({**base, "name": "nlu_parsed", "at": start, "data": {"intent": rng.choice(INTENTS)}})
        if rng.random() < 0.6:
            docs.append({**base, "name": "self_service_completed", "at": start + timedelta(seconds=30), "data": {}})
        elif rng.random() < 0.8:
            handed = start + timedelta(seconds=40)
            docs.append({**base, "name": "handed_off", "at": handed, "data": {"reason": "asked"}})
            if rng.random() < 0.85:
                agent = f"agent{rng.randrange(8)}"
                docs.append(
                    {**base, "name": "agent_claimed", "at": handed + timedelta(seconds=60), "data": {"agent": agent}}
                )
                messages.append(
                    {
                        "conversation_id": cid,
                        "direction": "out",
                        "author": f"agent:{agent}",
                        "created_at": handed + timedelta(seconds=rng.randrange(30, 900)),
                        "text": "您好",
                    }
                )
                docs.append(
                    {**base, "name": "agent_closed", "at": handed + timedelta(seconds=1200), "data": {"agent": agent}}
                )
                docs.append(
                    {
                        **base,
                        "name": "survey_answered",
                        "at": handed + timedelta(seconds=1300),
                        "data": {"stage": "csat", "score": rng.randint(1, 5), "agent": agent},
                    }
                )
    return docs, messages


MISSES = ["发票可以开专票吗", "能开增值税专票吗", "发票能开专票吗", "运费险怎么理赔", "退货运费险怎么赔付",
          "支持花呗分期吗", "可以用花呗吗", "会员积分怎么用", "积分能抵现吗", "可以开收据吗",
          "能寄到香港吗"]  # fmt: skip
CATEGORIES = ["product_damage", "quality", "logistics_delay", "wrong_item", "missing_item", "not_as_described"]


def analytics_data(tickets: int, now: datetime) -> tuple[list[dict], list[dict], list[dict]]:
    rng = random.Random(11)
    made, events, requests = [], [], []
    for n in range(tickets):
        created = (now - timedelta(minutes=rng.randrange(60 * 24 * 29))).isoformat()
        sku = f"SKU-{rng.randrange(60):03d}"
        flags = [{"kind": "possible_product_defect", "detail": sku}] if rng.random() < 0.05 else []
        made.append({"_id": f"T{n}", "category": rng.choice(CATEGORIES), "status": rng.choice(["new", "resolved"]),
                     "skus": [sku], "customer_id": f"cu{rng.randrange(tickets)}", "amount": rng.randrange(200),
                     "flags": flags, "created_at": created})  # fmt: skip
        requests.append({"_id": f"AS{n:08d}", "type": rng.choice(["refund", "return_refund"]),
                         "order_id": f"2026{n % 500:08d}", "status": rng.choice(["applied", "completed", "rejected"]),
                         "amount": rng.randrange(20, 500), "created_at": created, "timeline": []})  # fmt: skip
        events.append({"name": "knowledge_miss", "at": now - timedelta(minutes=rng.randrange(60 * 24 * 29)),
                       "data": {"text": rng.choice(MISSES)}, "conversation_id": f"c{n}"})  # fmt: skip
        events.append({"name": "call_ended", "at": now - timedelta(minutes=rng.randrange(60 * 24 * 29)),
                       "data": {"scenario": rng.choice(["order_status", "refund", "human"]),
                                "duration_seconds": rng.uniform(20, 300), "outcome": "self_service"}})  # fmt: skip
        if rng.random() < 0.2:
            events.append({"name": "call_rejected", "at": now - timedelta(minutes=rng.randrange(60 * 24 * 29)),
                           "data": {"caller": f"+86139{rng.randrange(100):08d}", "reason": "rate"}})  # fmt: skip
    return made, events, requests


async def analytics(store: ConversationStore, tickets: int) -> None:
    now = datetime.now(UTC)
    made, events, requests = analytics_data(tickets, now)
    await store.db["tickets"].insert_many(made)
    await store.events.insert_many(events)
    await store.db["aftersales_requests"].insert_many(requests)
    zone = ZoneInfo("Asia/Shanghai")
    start, end = now - timedelta(days=30), now + timedelta(minutes=1)
    for run in range(3):
        timings = []
        for name, work in (
            ("problems", problems_report(store.db, start, end, zone)),
            ("knowledge misses", knowledge_misses(store.db, start, end, zone)),
            ("ivr", ivr_report(store.db, start, end, zone)),
            ("refunds by order", refund_records(store.db, start, end, zone, order_id="202600000007")),
            ("refunds by status", refund_records(store.db, start, end, zone, status="completed")),
        ):
            began = time.perf_counter()
            result = await work
            timings.append(f"{name} {time.perf_counter() - began:.2f} s")
            if run == 0 and name == "knowledge misses":
                timings[-1] += f" ({len(result['clusters'])} clusters of {result['misses']})"
        print(f"analytics run {run + 1} ({tickets} tickets, {len(events)} events, {tickets} requests): "
              + ", ".join(timings))  # fmt: skip


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--tickets", type=int, default=2_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        mongo = EmbeddedMongo(Path(tmp))
        await mongo.start()
        store = ConversationStore.from_uri(mongo.uri, "bench_quality")
        try:
            await store.ensure_indexes()
            now = datetime.now(UTC)
            docs, messages = synthetic(args.events, now)
            await store.events.insert_many(docs)
            await store.messages.insert_many(messages)
            where = QualityFilter(now - timedelta(days=30), now + timedelta(minutes=1))
            for run in range(3):
                started = time.perf_counter()
                report = await quality_report(store.db, where, ZoneInfo("Asia/Shanghai"))
                loaded = time.perf_counter()
                report.overall()
                for dimension in DIMENSIONS:
                    report.grouped(dimension)
                done = time.perf_counter()
                print(
                    f"run {run + 1}: {len(docs)} events, {len(messages)} agent messages, {len(report.units)} units: "
                    f"read {loaded - started:.2f} s, figures + 5 groupings {done - loaded:.2f} s"
                )
            await analytics(store, args.tickets)
        finally:
            await store.close()
            await mongo.stop()


if __name__ == "__main__":
    asyncio.run(main())
