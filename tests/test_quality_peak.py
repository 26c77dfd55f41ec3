"""The post-peak report (`run.py report peak`) over conversations driven through the real
pipeline on three channels (REST, app IM, Telegram against the Bot API stand-in): every figure
below is compared with a count taken from the store itself, not from the report's code."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import sys
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from gateway import Gateway, GatewayBuilder, Settings, build_app
from gateway.settings import GatewaySettings, OutboxSettings
from nlu.understanding import UnderstandingClient
from quality.demo import seed_demo_quality
from quality.peak import csv_rows, format_text, peak_report
from store import InboundMessage
from store.embedded import EmbeddedMongo
from store.mongo import ConversationStore
from tests.conftest import DEMO_ORDERS, REPO_ROOT
from tests.helpers import CUSTOMER_TOKEN_SECRET, wait_for
from tests.selfservice import Customer
from tests.telegram_standin import TOKEN, BotApiStandIn

SHANGHAI = ZoneInfo("Asia/Shanghai")
UNDELIVERABLE_CHAT = "404"
"""The stand-in answers "chat not found" for this chat: a permanent delivery failure."""


@pytest_asyncio.fixture
async def peak(
    tmp_path: Path, store: ConversationStore, nlu: UnderstandingClient, standin: BotApiStandIn
) -> AsyncIterator[tuple[Gateway, TestClient[object, object]]]:
    """A peak in miniature: the quality demo on REST, app and Telegram, a refund, a reply that cannot go out."""
    settings = (
        Settings(
            gateway=GatewaySettings(var_dir=tmp_path / "var"),
            outbox=OutboxSettings(base_delay=0.05, poll_interval=0.05),
        )
        .with_channel("app", secret="peak-secret")
        .with_channel("telegram", bot_token=TOKEN, webhook_secret="peak-hook", api_base_url=standin.base_url)
        .with_channel("rest", customer_token_secret=CUSTOMER_TOKEN_SECRET)
    )
    gateway = GatewayBuilder(settings).store(store).nlu(nlu).build()
    async with TestClient(TestServer(build_app(gateway))) as http:
        await gateway.seed_orders(DEMO_ORDERS)
        handlers = {channel.name: gateway.handler_for(channel) for channel in gateway.channels}
        assert {"rest", "app", "telegram"} <= set(handlers)
        assert gateway.handoff is not None
        assert await seed_demo_quality(store, handlers, gateway.handoff) > 0
        customer = Customer(http, gateway)
        await customer.order("paid")
        assert "确认取消这个订单" in await customer.say("还没发货，帮我取消订单退款")
        assert "闪电退款" in await customer.say("确认")
        await handlers["telegram"](
            InboundMessage(channel="telegram", sender_id=UNDELIVERABLE_CHAT, channel_message_id="peak-404", text="你好")
        )

        async def failed() -> bool:
            errors = [str(e["data"].get("error")) async for e in store.events.find({"name": "delivery_failed"})]
            return any("chat not found" in error.lower() for error in errors)

        await wait_for(failed)
        yield gateway, http


def _days() -> tuple[Any, Any]:
    today = datetime.now(SHANGHAI).date()
    return today - timedelta(days=1), today + timedelta(days=1)


async def _inbound(store: ConversationStore) -> list[dict[str, Any]]:
    return [doc async for doc in store.messages.find({"direction": "in"})]


async def test_volumes_rates_refunds_and_failures_match_the_store(
    peak: tuple[Gateway, TestClient[object, object]], store: ConversationStore
) -> None:
    first, last = _days()
    report = await peak_report(store.db, first, last, SHANGHAI)
    inbound = await _inbound(store)
    volumes = report["volumes"]
    assert volumes["total"] == {
        "messages": len(inbound),
        "conversations": len({d["conversation_id"] for d in inbound}),
        "customers": len({d["customer_id"] for d in inbound}),
    }
    assert set(volumes["by_channel"]) == {"rest", "app", "telegram"}
    for channel, row in volumes["by_channel"].items():
        mine = [d for d in inbound if d["channel"] == channel]
        assert row == {
            "messages": len(mine),
            "conversations": len({d["conversation_id"] for d in mine}),
            "customers": len({d["customer_id"] for d in mine}),
        }
    intents = [(d.get("understanding") or {}).get("intent") or "(none)" for d in inbound]
    assert {k: v["messages"] for k, v in volumes["by_intent"].items()} == {i: intents.count(i) for i in set(intents)}
    assert volumes["by_intent"]["human_handoff"]["conversations"] >= 3
    assert sum(h["messages"] for h in volumes["hourly"]) == len(inbound)

    service = report["service"]["overall"]
    handed = {e["conversation_id"] async for e in store.events.find({"name": "handed_off"})}
    completed = {e["conversation_id"] async for e in store.events.find({"name": "self_service_completed"})}
    bot_turns = {"name": {"$in": ["nlu_parsed", "nlu_unavailable"]}}
    parsed = {e["conversation_id"] async for e in store.events.find(bot_turns)}
    assert service["transfer_to_human"]["numerator"] == len(handed) >= 3
    assert service["self_service_completion"]["numerator"] == len(completed - handed) >= 2
    assert service["self_service_completion"]["denominator"] == len(parsed)
    answered = {
        d["conversation_id"]
        async for d in store.messages.find({"direction": "out"})
        if str(d.get("author")).startswith("agent:")
    }
    assert service["first_response_time"]["denominator"] == len(answered) >= 2
    closed = {e["conversation_id"] async for e in store.events.find({"name": "agent_closed"})}
    assert service["handoff_resolution_time"]["denominator"] == len(closed & handed) >= 1
    by_channel = report["service"]["by_channel"]
    assert sum(row["transfer_to_human"]["numerator"] for row in by_channel.values()) == len(handed)
    by_intent = report["service"]["by_intent"]
    assert sum(row["self_service_completion"]["denominator"] for row in by_intent.values()) == len(parsed)

    requests = [d async for d in store.db["aftersales_requests"].find({"type": {"$in": ["refund", "return_refund"]}})]
    refunds = report["refunds"]["total"]
    assert refunds["count"] == len(requests) >= 1
    assert refunds["amount"] == round(sum(d["amount"] for d in requests), 2)
    assert refunds["automatic"] == sum(1 for d in requests if str(d.get("decided_by")).startswith("system:"))

    failures = [e async for e in store.events.find({"name": "delivery_failed"})]
    assert report["delivery_failures"]["total"] == len(failures) >= 1
    assert report["delivery_failures"]["by_channel"] == {"telegram": len(failures)}
    errors = {row["error"]: row["count"] for row in report["delivery_failures"]["top_errors"]}
    assert sum(errors.values()) == len(failures)
    assert any("chat not found" in error.lower() for error in errors)

    text = format_text(report)
    assert f"{len(inbound)} customer messages" in text
    assert f"Refunds: {len(requests)} requests" in text
    rows = csv_rows(report)
    assert ("volume", "total", "messages", str(len(inbound))) in rows
    assert ("delivery_failures", "total", "count", str(len(failures))) in rows


async def test_a_range_before_the_peak_is_empty(
    peak: tuple[Gateway, TestClient[object, object]], store: ConversationStore
) -> None:
    first, _ = _days()
    report = await peak_report(store.db, first - timedelta(days=10), first - timedelta(days=5), SHANGHAI)
    assert report["volumes"]["total"] == {"messages": 0, "conversations": 0, "customers": 0}
    assert report["volumes"]["hourly"] == []
    assert report["refunds"]["total"]["count"] == 0
    assert report["service"]["overall"]["transfer_to_human"]["value"] is None
    assert "Self-service completion: —" in format_text(report)


async def test_the_command_prints_the_same_report_as_json_and_writes_csv(
    peak: tuple[Gateway, TestClient[object, object]],
    store: ConversationStore,
    mongo: EmbeddedMongo,
    tmp_path: Path,
) -> None:
    first, last = _days()
    env = {**os.environ, "MONGODB_URI": mongo.uri, "MONGODB_DATABASE": store.db.name, "GATEWAY_VAR_DIR": str(tmp_path)}
    command = [
        sys.executable,
        str(REPO_ROOT / "run.py"),
        "report",
        "peak",
        "--from",
        first.isoformat(),
        "--to",
        last.isoformat(),
    ]
    code, out, err = await _run([*command, "--json", "--csv", str(tmp_path / "peak.csv")], env)
    assert code == 0, err
    printed = json.loads(out)
    expected = await peak_report(store.db, first, last, SHANGHAI)
    assert printed["volumes"] == expected["volumes"]
    assert printed["refunds"]["total"] == expected["refunds"]["total"]
    assert printed["delivery_failures"] == expected["delivery_failures"]
    with (tmp_path / "peak.csv").open(encoding="utf-8") as sheet:
        table = list(csv.reader(sheet))
    assert table[0] == ["section", "key", "field", "value"]
    assert ["volume", "total", "messages", str(expected["volumes"]["total"]["messages"])] in table

    code, out, _ = await _run(command, env)
    assert code == 0 and out.startswith(f"Peak report {first.isoformat()}")
    code, _, err = await _run([*command[:4], "--from", last.isoformat(), "--to", first.isoformat()], env)
    assert code == 2 and "--from must not be after --to" in err


async def _run(command: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()
