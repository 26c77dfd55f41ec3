"""Agents in real headless Chromium: a Telegram customer (python-telegram-bot against the Bot
API stand-in, the real NLU) asks for a human; the conversation appears live in two agents'
inboxes; one takes it, the other sees who is viewing and typing; the reply, and later the survey,
reach the customer's Telegram chat, the customer's answer appears without a reload, and an
internal note reaches the colleague but never the customer."""

from __future__ import annotations

from pathlib import Path

from aiohttp import ClientSession
from playwright.async_api import Browser, expect

from backoffice.permissions import Role
from channels.telegram import SECRET_HEADER, WEBHOOK_PATH
from nlu import NluClient
from store import ConversationState
from store.mongo import ConversationStore
from tests.browser import artifact, browser  # noqa: F401  (the fixture)
from tests.console_support import make_staff, served, sign_in_page
from tests.helpers import wait_for
from tests.telegram_standin import BotApiStandIn, private_update, telegram_gateway

SECRET = "console-telegram-secret"
CHAT = 556677


async def test_two_agents_take_and_answer_a_telegram_customer_in_the_console(
    browser: Browser,  # noqa: F811
    tmp_path: Path,
    store: ConversationStore,
    nlu: NluClient,
    standin: BotApiStandIn,
) -> None:
    gateway = telegram_gateway(tmp_path, store, nlu, standin, SECRET)
    updates = iter(range(5000, 5100))
    async with served(gateway) as site, ClientSession(site.base) as telegram:

        async def customer_says(text: str) -> None:
            update = private_update(next(updates), CHAT, text=text)
            response = await telegram.post(WEBHOOK_PATH, json=update, headers={SECRET_HEADER: SECRET})
            assert response.status == 200

        async def chat_has(words: str) -> bool:
            return any(words in s["text"] for s in standin.sent)

        await make_staff(gateway, "liu.cs", Role.CUSTOMER_SERVICE, name="刘洋")
        await make_staff(gateway, "he.cs", Role.CUSTOMER_SERVICE, name="何芳")
        liu_context, liu = await sign_in_page(browser, site, "liu.cs")
        he_context, he = await sign_in_page(browser, site, "he.cs")
        try:
            await expect(liu.locator("#live-dot.on")).to_be_visible(timeout=10_000)
            await expect(he.locator("#live-dot.on")).to_be_visible(timeout=10_000)

            # The customer asks for a human while both inboxes are open: it appears without a reload.
            await customer_says("我的订单202611020003一直没到，转人工")
            await wait_for(lambda: chat_has("人工"))
            doc = await store.conversations.find_one({"sender_id": str(CHAT)})
            assert doc is not None and doc["state"] == ConversationState.WAITING_AGENT
            conversation_id = doc["_id"]
            row = f'#waiting tr[data-conversation="{conversation_id}"]'
            await expect(liu.locator(row)).to_be_visible(timeout=10_000)
            await expect(he.locator(row)).to_be_visible(timeout=10_000)
            await expect(liu.locator(f"{row} .badge[data-channel=telegram]")).to_be_visible()
            await liu.screenshot(path=str(artifact("console-inbox.png")), full_page=True)

            # 刘洋 takes it; 何芳's inbox drops it live.
            await liu.locator(f"{row} button.claim").click()
            await liu.wait_for_url(f"**/console/conversations/{conversation_id}")
            await expect(liu.locator("#state")).to_have_attribute("data-state", "agent")
            await expect(he.locator(row)).to_have_count(0, timeout=10_000)
            await expect(liu.locator("#thread")).to_contain_text("转人工")
            await expect(liu.locator("#bot-summary")).to_contain_text("customer_asked")

            # 何芳 opens it too: each sees the other; 刘洋 types and 何芳 sees it.
            await he.goto(f"{site.base}/console/conversations/{conversation_id}")
            await expect(he.locator("#read-only")).to_contain_text("liu.cs")
            await expect(liu.locator("#presence")).to_contain_text("何芳", timeout=10_000)
            await expect(he.locator("#presence")).to_contain_text("刘洋", timeout=10_000)
            await liu.locator("#reply").type("您好，我马上帮您查")
            await expect(he.locator("#presence")).to_contain_text("正在输入", timeout=10_000)

            # The reply goes out on Telegram.
            await liu.click("#send")
            await wait_for(lambda: chat_has("我马上帮您查"))
            await expect(he.locator("#thread")).to_contain_text("我马上帮您查", timeout=10_000)

            # The customer's answer shows up in both views without a reload.
            await customer_says("好的谢谢，快递单号是SF1234567890")
            await expect(liu.locator("#thread")).to_contain_text("SF1234567890", timeout=15_000)
            await expect(he.locator("#thread")).to_contain_text("SF1234567890", timeout=15_000)

            # A canned reply fills the box; an internal note reaches 何芳 but never Telegram.
            await liu.select_option("#canned", index=2)
            assert "查询" in await liu.locator("#reply").input_value()
            await liu.fill("#reply", "客户很着急，优先跟进物流")
            await liu.check("#as-note")
            await liu.click("#send")
            await expect(he.locator("#thread .bubble.note")).to_contain_text("优先跟进物流", timeout=10_000)
            assert not await chat_has("优先跟进物流")
            await liu.screenshot(path=str(artifact("console-conversation.png")), full_page=True)

            # Closing with a survey hands the chat back to the bot and asks the customer to rate it.
            await liu.click("#close-survey")
            await expect(liu.locator("#state")).to_have_attribute("data-state", "bot", timeout=10_000)
            await wait_for(lambda: chat_has("本次人工服务已结束"))
            doc = await store.conversations.find_one({"_id": conversation_id})
            assert doc is not None and doc["state"] == ConversationState.BOT
            assert await store.events.count_documents({"name": "agent_closed", "conversation_id": conversation_id})
            agent_replies = await store.messages.count_documents(
                {"conversation_id": conversation_id, "author": "agent:liu.cs"}
            )
            assert agent_replies == 1  # the note is not a message to the customer
        finally:
            await liu_context.close()
            await he_context.close()
