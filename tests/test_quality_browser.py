"""The quality pages in Chromium: conversations are seeded through the real REST channel, NLU
and dialogue (and an agent through the agent API), a quality user opens the dashboard, and the
figures shown must equal what this test counts in the store itself; a click on a bar lists the
conversations behind it; the refund report and the review queue are opened and scored.
Screenshots: var/test-artifacts/console-quality.png, console-refunds.png, console-review.png."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import ClientSession
from playwright.async_api import Browser, Page, expect

from backoffice.permissions import Role
from backoffice.settings import BackofficeSettings
from channels.customer_token import sign_customer_token
from gateway import Gateway, Settings
from gateway.settings import GatewaySettings
from shop.aftersales import RequestType
from store.mongo import ConversationStore
from tests.browser import artifact, browser  # noqa: F401
from tests.console_support import Served, make_staff, served, sign_in_page
from tests.helpers import CUSTOMER_TOKEN_SECRET, post_rest
from tests.selfservice import make_order, new_phone

AGENT_TOKEN = "agent-token-for-quality-tests"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        gateway=GatewaySettings(var_dir=tmp_path / "var"), backoffice=BackofficeSettings(agent_api_token=AGENT_TOKEN)
    ).with_channel("rest", customer_token_secret=CUSTOMER_TOKEN_SECRET)


async def say(http: ClientSession, sender: str, text: str, phone: str) -> list[dict[str, Any]]:
    token = sign_customer_token(CUSTOMER_TOKEN_SECRET, {"phone": phone})
    response = await post_rest(http, {"sender": sender, "message": text, "metadata": {"customer_token": token}})
    assert response.status == 200, await response.text()
    replies: list[dict[str, Any]] = await response.json()
    return replies


async def seed_conversations(site: Served, gateway: Gateway) -> None:
    assert gateway.orders is not None and gateway.store is not None
    agent = {"Authorization": f"Bearer {AGENT_TOKEN}"}
    async with ClientSession(site.base) as http:
        for n in range(3):  # order look-ups the bot finishes
            phone = new_phone()
            order = make_order(phone, "shipped")
            await gateway.orders.upsert([order])
            await say(http, f"q-look-{n}", f"帮我查一下订单{order.order_id}到哪了", phone)
        for n in range(2):  # customers who ask for a person straight away
            await say(http, f"q-human-{n}", "转人工", new_phone())
        await say(http, "q-hello", "你好", new_phone())
        # An agent takes the first hand-off, answers and closes it (the agent API).
        waiting = await gateway.store.conversations.find_one({"sender_id": "q-human-0"})
        assert waiting is not None and waiting["state"] == "waiting_agent", waiting
        base = f"/api/agent/conversations/{waiting['_id']}"
        assert (await http.post(f"{base}/claim", json={"agent": "li.agent"}, headers=agent)).status == 200
        reply = await http.post(f"{base}/messages", json={"agent": "li.agent", "text": "您好，我来帮您"}, headers=agent)
        assert reply.status == 201
        assert (await http.post(f"{base}/close", json={"agent": "li.agent"}, headers=agent)).status == 200


async def counted_in_store(store: ConversationStore) -> dict[str, tuple[int, int]]:
    """The dashboard's three conversation rates, counted here straight from the events."""

    async def ids(*names: str) -> set[str]:
        return {str(e["conversation_id"]) async for e in store.events.find({"name": {"$in": list(names)}})}

    bot = await ids("nlu_parsed", "nlu_unavailable")
    handed = await ids("handed_off") & bot
    completed = (await ids("self_service_completed") & bot) - handed
    claimed = await ids("agent_claimed")
    answered = {
        str(m["conversation_id"])
        async for m in store.messages.find({"direction": "out"})
        if str(m.get("author", "")).startswith("agent:")
    }
    return {
        "self_service_completion": (len(completed), len(bot)),
        "transfer_to_human": (len(handed), len(bot)),
        "abandonment": (len(handed - claimed - answered), len(handed)),
    }


async def wait_loaded(page: Page) -> None:
    await expect(page.locator("body[data-loaded=true]")).to_have_count(1, timeout=15_000)


async def click_bar(page: Page, canvas: str, dataset: int, index: int) -> None:
    """A real mouse click where Chart.js drew the bar."""
    point = await page.evaluate(
        """([id, dataset, index]) => {
             const canvas = document.getElementById(id);
             canvas.scrollIntoView({ block: "center" });
             const bar = Chart.getChart(canvas).getDatasetMeta(dataset).data[index];
             const box = canvas.getBoundingClientRect();
             return { x: box.left + bar.x, y: box.top + (bar.y + bar.base) / 2 };
           }""",
        [canvas, dataset, index],
    )
    await page.mouse.click(point["x"], point["y"])


async def test_the_dashboard_shows_the_stores_figures_and_drills_down_from_a_bar(
    gateway: Gateway,
    browser: Browser,  # noqa: F811
) -> None:
    async with served(gateway) as site:
        assert gateway.store is not None and gateway.aftersales is not None
        await seed_conversations(site, gateway)
        await gateway.aftersales.create(
            type=RequestType.REFUND, order_id="202611150001", customer_id="cu-demo", actor="customer",
            amount=89.0, reason="破损", channel="rest",
        )  # fmt: skip
        expected = await counted_in_store(gateway.store)
        assert expected["self_service_completion"][0] >= 1 and expected["transfer_to_human"][0] >= 1, expected
        await make_staff(gateway, "qa.chen", Role.QUALITY, name="陈 质检")
        context, page = await sign_in_page(browser, site, "qa.chen", landing="/console/quality")
        try:
            await wait_loaded(page)
            for metric, (numerator, denominator) in expected.items():
                card = page.locator(f"#metric-{metric}")
                await expect(card.locator(".metric-value")).to_have_text(f"{100 * numerator / denominator:.1f}%")
                await expect(card.locator(".metric-fraction")).to_have_text(f"{numerator} / {denominator}")
                await expect(card.locator(".definition")).not_to_be_empty()
            await page.screenshot(path=str(artifact("console-quality.png")), full_page=True)

            # Bars by channel: every seeded conversation is on the web channel (rest); dataset 1 is
            # transfer to a human, so the drill-down lists the handed-off conversations.
            keys = await page.locator("#chart-channel").get_attribute("data-keys")
            assert keys == '["rest"]'
            await click_bar(page, "chart-channel", 1, 0)
            rows = page.locator("#q-drill-table tbody tr")
            await expect(rows).to_have_count(expected["transfer_to_human"][1])
            handed_rows = rows.filter(has_text="是")
            await expect(handed_rows).to_have_count(expected["transfer_to_human"][0])
            # Quality staff do not handle conversations: no links into the conversation page.
            await expect(page.locator("#q-drill-table a")).to_have_count(0)
            await expect(page.locator("#q-export")).to_have_attribute("href", "/api/console/quality/export.csv?" +
                                                                      page.url.split("?", 1)[1])  # fmt: skip

            await page.goto(f"{site.base}/console/refunds")
            await wait_loaded(page)
            await expect(page.locator("#refund-count .metric-value")).to_have_text("1")
            await expect(page.locator("#refund-amount .metric-value")).to_have_text("89.00")
            await page.screenshot(path=str(artifact("console-refunds.png")), full_page=True)

            await page.goto(f"{site.base}/console/review")
            await wait_loaded(page)
            progress = page.locator("#review-progress")
            before = await progress.text_content()
            assert before is not None and before.startswith("已评 0 / 共 ")
            item_id = await page.locator("#review-item dl").get_attribute("data-item")
            await page.screenshot(path=str(artifact("console-review.png")), full_page=True)
            await page.select_option("#review-intent", "order_status")
            await page.fill("#review-comment", "回答准确")
            await page.click("#verdict-good")
            await expect(progress).to_contain_text("已评 1 / 共 ")
            review = await gateway.store.db["quality_reviews"].find_one({"item_id": item_id})
            assert review is not None
            assert (review["reviewer"], review["verdict"], review["right_intent"], review["comment"]) == (
                "qa.chen", "good", "order_status", "回答准确")  # fmt: skip
        finally:
            await context.close()


async def test_the_shops_day_decides_the_default_range_whatever_the_browsers_clock(
    gateway: Gateway,
    browser: Browser,  # noqa: F811
) -> None:
    """A reviewer whose browser is 19 hours behind the shop (Pago Pago, UTC-11, against Shanghai)
    still sees today's figures: the default range is the shop's, from the server."""
    shop_today = datetime.now(ZoneInfo(gateway.settings.shop.timezone)).date().isoformat()
    async with served(gateway) as site:
        await seed_conversations(site, gateway)
        await make_staff(gateway, "qa.far", Role.QUALITY, name="远 质检")
        context, page = await sign_in_page(
            browser, site, "qa.far", landing="/console/quality", timezone_id="Pacific/Pago_Pago"
        )
        try:
            await wait_loaded(page)
            await expect(page.locator("#q-to")).to_have_value(shop_today)
            value = page.locator("#metric-self_service_completion .metric-value")
            await expect(value).not_to_have_text("—")
            await page.goto(f"{site.base}/console/refunds")
            await expect(page.locator("#r-to")).to_have_value(shop_today)
        finally:
            await context.close()
