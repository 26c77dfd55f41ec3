"""Time the quality dashboard's summary over synthetic events (default 20,000) on the embedded
nx-27017 server: one report (all metrics) and its five groupings."""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from quality.metrics import DIMENSIONS, QualityFilter, quality_report
from store import ConversationStore
from store.embedded import EmbeddedMongo

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


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
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
        finally:
            await store.close()
            await mongo.stop()


if __name__ == "__main__":
    asyncio.run(main())
