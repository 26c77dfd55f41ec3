"""Where a turn's time goes (``GET /metrics``): each stage's duration and the store round trips of
recent turns, for the operators' network only."""

from __future__ import annotations

import re
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from gateway import GatewayBuilder, Settings, build_app
from gateway.settings import GatewaySettings
from nlu.understanding import UnderstandingClient
from store.mongo import ConversationStore
from tests.helpers import Chat, unique_sender


def _value(text: str, pattern: str) -> float:
    match = re.search(pattern, text)
    assert match is not None, pattern
    return float(match.group(1))


async def test_turn_stages_and_round_trips_are_counted(client: TestClient[object, object]) -> None:
    chat = Chat(client, unique_sender())
    await chat.send("你好")
    await chat.send("帮我查一下订单202611150001到哪了")
    response = await client.get("/metrics")
    assert response.status == 200 and response.content_type == "text/plain"
    text = await response.text()
    assert _value(text, r'aftersales_turn_stage_seconds_count\{stage="total"\} (\d+)') == 2
    for stage in ("accept", "lease", "understand", "dialogue", "write"):
        assert _value(text, rf'aftersales_turn_stage_seconds\{{stage="{stage}",quantile="0.5"\}} ([\d.]+)') > 0
    trips = _value(text, r'aftersales_turn_store_round_trips\{quantile="1.0"\} (\d+)')
    assert 5 <= trips <= 40  # a turn reads and writes the store; the budget itself is tests/test_turn_path.py


async def test_metrics_are_refused_outside_the_operators_network(
    store: ConversationStore, nlu: UnderstandingClient, tmp_path: Path
) -> None:
    settings = Settings(gateway=GatewaySettings(var_dir=tmp_path / "var")).with_changes(
        limits__trusted_proxies=("127.0.0.1",)
    )
    gateway = GatewayBuilder(settings).store(store).nlu(nlu).build()
    async with TestClient(TestServer(build_app(gateway), host="127.0.0.1")) as http:
        outside = await http.get("/metrics", headers={"X-Forwarded-For": "203.0.113.5"})  # a client behind nginx
        assert outside.status == 403
        assert (await http.get("/metrics")).status == 200  # the scraper on this host
