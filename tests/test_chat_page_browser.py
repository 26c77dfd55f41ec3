"""The customer chat page in real headless Chromium against an in-process gateway on loopback:
a conversation with quick replies, a photo upload, and a reconnect that picks up what was
missed while the page was closed."""

from __future__ import annotations

import io
import time
from pathlib import Path

from aiohttp.test_utils import TestServer
from PIL import Image
from playwright.async_api import Browser, Page, expect

from channels.app_im import CHAT_PAGE_PATH, sign_user
from gateway import GatewayBuilder, Settings, build_app
from gateway.settings import GatewaySettings, OutboxSettings
from nlu import NluClient
from store import OutboundMessage
from store.mongo import ConversationStore
from tests.browser import artifact, browser  # noqa: F401  (the fixture)
from tests.conftest import DEMO_ORDERS

SECRET = "app-secret-for-the-browser"


def page_url(server: TestServer, user: str) -> str:
    expires = int(time.time()) + 3600
    token = sign_user(SECRET, user, expires)
    return f"http://127.0.0.1:{server.port}{CHAT_PAGE_PATH}?user={user}&expires={expires}&token={token}"


async def bot_says(page: Page, text: str) -> None:
    await expect(page.locator(".msg.out").filter(has_text=text).last).to_be_visible(timeout=20_000)


async def test_a_customer_chats_in_the_browser(
    browser: Browser,  # noqa: F811
    store: ConversationStore,
    nlu: NluClient,
    tmp_path: Path,
) -> None:
    settings = Settings(
        gateway=GatewaySettings(var_dir=tmp_path / "var"), outbox=OutboxSettings(poll_interval=0.05)
    ).with_channel("app", secret=SECRET)
    gateway = GatewayBuilder(settings).store(store).nlu(nlu).build()
    server = TestServer(build_app(gateway), host="127.0.0.1")
    await server.start_server()
    try:
        await gateway.seed_orders(DEMO_ORDERS)
        user = "browser-user-1"
        context = await browser.new_context(locale="zh-CN")
        page = await context.new_page()
        await page.goto(page_url(server, user))
        await expect(page.locator("#status")).to_have_text("已连接", timeout=15_000)

        await page.fill("#text", "你好")
        await page.press("#text", "Enter")
        await bot_says(page, "售后智能客服")
        await page.locator(".msg.out .choices button", has_text="查询订单").last.click()
        await bot_says(page, "订单号")
        await page.fill("#text", "202611150001")
        await page.press("#text", "Enter")
        await bot_says(page, "已发货")

        photo = io.BytesIO()
        Image.new("RGB", (64, 48), (30, 120, 200)).save(photo, "PNG")
        await page.set_input_files(
            "#file", files=[{"name": "slip.png", "mimeType": "image/png", "buffer": photo.getvalue()}]
        )
        await page.press("#text", "Enter")
        await bot_says(page, "已收到您发送的文件")
        shot = artifact("chat-page.png")
        await page.screenshot(path=str(shot), full_page=True)
        print(f"screenshot: {shot}")

        # The page closes; an agent answers meanwhile; the page comes back and resumes.
        await page.close()
        conversation = await store.conversations.find_one({"channel": "app", "sender_id": user})
        assert conversation is not None
        await store.record_outbound(
            OutboundMessage(
                channel="app", recipient_id=user, conversation_id=conversation["_id"],
                text="您好，我是客服小王，照片已收到。", author="agent:wang",
            ),
            customer_id=conversation["customer_id"], sequence=0,
        )  # fmt: skip
        page = await context.new_page()
        await page.goto(page_url(server, user))
        await bot_says(page, "客服小王")
        assert await page.locator(".msg.out", has_text="售后智能客服").count() == 0, "only what was missed"

        inbound = [m async for m in store.messages.find({"conversation_id": conversation["_id"], "direction": "in"})]
        assert [m["text"] for m in inbound] == ["你好", "查询订单", "202611150001", ""]
        assert inbound[-1]["attachments"][0]["content_type"] == "image/png"
        await context.close()
    finally:
        await server.close()
        await gateway.stop()
