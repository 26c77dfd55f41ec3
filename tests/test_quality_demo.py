"""`make run`'s quality demo: conversations driven through the real pipeline, once per database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from aiohttp.test_utils import TestClient

from gateway import Gateway
from quality.demo import seed_demo_quality
from quality.metrics import QualityFilter, quality_report
from store.mongo import ConversationStore


async def test_the_demo_fills_the_dashboard_once(
    client: TestClient[object, object], gateway: Gateway, store: ConversationStore
) -> None:
    handlers = {channel.name: gateway.handler_for(channel) for channel in gateway.channels}
    assert gateway.handoff is not None
    assert await seed_demo_quality(store, handlers, gateway.handoff) > 0
    assert await seed_demo_quality(store, handlers, gateway.handoff) == 0  # idempotent
    now = datetime.now(UTC)
    report = await quality_report(store.db, QualityFilter(now - timedelta(days=1), now + timedelta(minutes=1)),
                                  ZoneInfo("Asia/Shanghai"))  # fmt: skip
    overall = report.overall()
    assert overall["self_service_completion"]["numerator"] >= 2
    assert overall["transfer_to_human"]["numerator"] >= 2
    assert overall["first_response_time"]["denominator"] >= 2
    assert overall["csat"]["denominator"] == 4
