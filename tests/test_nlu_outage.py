"""When the NLU server is down or slow, conversations degrade instead of failing."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway import Gateway, GatewayBuilder, Settings, build_app
from nlu import RasaNluClient
from nlu.server import EmbeddedRasaServer
from store import ConversationState
from store.mongo import ConversationStore
from supervisor import free_port
from tests.conftest import DEMO_ORDERS
from tests.helpers import Chat, unique_sender, wait_for


@pytest_asyncio.fixture
async def dead_nlu() -> AsyncIterator[RasaNluClient]:
    """A client for a port where nothing listens: a real connection refusal."""
    client = RasaNluClient(f"http://127.0.0.1:{free_port()}", "token", timeout=2)
    yield client
    await client.close()


@pytest_asyncio.fixture
async def outage_client(
    settings: Settings, store: ConversationStore, dead_nlu: RasaNluClient
) -> AsyncIterator[tuple[TestClient[object, object], Gateway]]:
    gateway = GatewayBuilder(settings).store(store).nlu(dead_nlu).build()
    async with TestClient(TestServer(build_app(gateway))) as http:
        await gateway.seed_orders(DEMO_ORDERS)
        yield http, gateway


async def test_nlu_down_clarifies_offers_a_human_then_hands_off(
    outage_client: tuple[TestClient[object, object], Gateway],
    store: ConversationStore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    http, _ = outage_client
    chat = Chat(http, unique_sender())
    with caplog.at_level(logging.ERROR, logger="gateway.turns"):
        first = await chat.send("我的快递到哪了")
    assert "系统有点忙" in str(first[0]["text"])
    menu = [{"title": "查询订单", "payload": "查询订单"}, {"title": "转人工", "payload": "转人工"}]
    assert first[0]["buttons"] == menu
    assert any("NLU unavailable" in r.getMessage() for r in caplog.records)

    second = await chat.texts("喂？")
    assert "转接人工客服" in second[0]
    conversation = await store.conversations.find_one({"sender_id": chat.sender})
    assert conversation is not None and conversation["state"] == ConversationState.WAITING_AGENT
    assert await store.events.count_documents({"name": "nlu_unavailable"}) == 2
    handed = await store.events.find_one({"name": "handed_off"})
    assert handed is not None and handed["data"]["reason"] == "nlu_unavailable"


async def test_health_reports_the_nlu_outage(outage_client: tuple[TestClient[object, object], Gateway]) -> None:
    http, _ = outage_client
    response = await http.get("/health")
    assert response.status == 503
    assert await response.json() == {"status": "degraded", "store": True, "nlu": False}


async def test_an_order_id_is_still_answered_when_the_nlu_fails_mid_flow(
    client: TestClient[object, object], gateway: Gateway, dead_nlu: RasaNluClient
) -> None:
    chat = Chat(client, unique_sender())
    assert "订单号" in (await chat.texts("我的快递到哪了"))[0]
    assert gateway.turns is not None
    gateway.turns.nlu = dead_nlu
    answer = await chat.texts("202611150001")
    assert "已发货" in answer[0]


async def test_a_slow_nlu_times_out_into_the_fallback(settings: Settings, store: ConversationStore) -> None:
    async def slow_parse(_: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.json_response({})

    slow = web.Application()
    slow.router.add_post("/model/parse", slow_parse)
    async with TestServer(slow) as slow_server:
        nlu = RasaNluClient(str(slow_server.make_url("")), timeout=0.5)
        gateway = GatewayBuilder(settings).store(store).nlu(nlu).build()
        async with TestClient(TestServer(build_app(gateway))) as http:
            replies = await Chat(http, unique_sender()).texts("查订单")
        await nlu.close()
    assert "系统有点忙" in replies[0]


async def test_the_rasa_server_stops_and_comes_back_under_a_running_gateway(
    settings: Settings, store: ConversationStore, rasa: EmbeddedRasaServer
) -> None:
    """The session's real Rasa server is stopped under a gateway built as production builds it
    (``RASA_URL``): the dialogue degrades to keywords and the numbered menu, ``/health`` says
    degraded; started again on the same URL, the next turns use Rasa again, no restart needed."""
    production = settings.with_changes(nlu__rasa_urls=(rasa.url,), nlu__rasa_token=rasa.token, nlu__timeout_seconds=2.0)
    gateway = GatewayBuilder(production).store(store).build()
    async with TestClient(TestServer(build_app(gateway))) as http:
        await gateway.seed_orders(DEMO_ORDERS)
        assert (await http.get("/health")).status == 200
        assert "订单号" in (await Chat(http, unique_sender()).texts("我的快递到哪了"))[0]
        try:
            await rasa.stop()
            health = await http.get("/health")
            assert health.status == 503
            assert await health.json() == {"status": "degraded", "store": True, "nlu": False}

            menu = Chat(http, unique_sender())
            first = await menu.send("嗯那个东西")  # no keyword: the fallback offers a numbered menu
            assert "系统有点忙" in str(first[0]["text"])
            assert [b["payload"] for b in first[0]["buttons"]] == ["查询订单", "转人工"]  # type: ignore[index, union-attr]
            assert "订单号" in (await menu.texts("1"))[0], "1 = 查询订单, read by keyword"
            assert "已发货" in (await menu.texts("202611150001"))[0]

            human = Chat(http, unique_sender())
            assert "转接人工客服" in (await human.texts("转人工"))[0]
            handed = await store.conversations.find_one({"sender_id": human.sender})
            assert handed is not None and handed["state"] == ConversationState.WAITING_AGENT
            assert handed["handoff_reason"] == "customer_asked"
            assert await store.events.count_documents({"name": "nlu_keywords"}) == 3
        finally:
            await rasa.start()  # same port and token: the URL the gateway knows

        async def healthy() -> bool:
            return (await http.get("/health")).status == 200

        await wait_for(healthy, 10)
        keywords_before = await store.events.count_documents({"name": "nlu_keywords"})
        back = Chat(http, unique_sender())
        assert "订单号" in (await back.texts("帮我看看我买的东西发货了没有"))[0]
        latest = await store.messages.find_one({"channel_message_id": {"$regex": f"^{back.sender}:"}})
        assert latest is not None and latest["understanding"]["intent"] == "order_status", "read by Rasa again"
        assert await store.events.count_documents({"name": "nlu_keywords"}) == keywords_before

    accepted = await store.count_messages(channel="rest", direction="in")
    assert accepted == 6
    async for inbound in store.messages.find({"direction": "in"}):
        assert inbound["processed"] and await store.count_messages(in_reply_to=inbound["_id"]) >= 1
    ids = [m["channel_message_id"] async for m in store.messages.find({"direction": "in"})]
    assert len(set(ids)) == len(ids), "each message stored once"
