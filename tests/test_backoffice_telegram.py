"""A customer on Telegram (python-telegram-bot against the Bot API stand-in, the real NLU):
their complaint becomes a ticket, a reviewer takes it and answers through the backoffice API,
and every notice, the reply and the survey reach the customer's own chat; the customer answers
the survey with the inline buttons and a typed number."""

from __future__ import annotations

from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from backoffice.permissions import Role
from channels.telegram import SECRET_HEADER, WEBHOOK_PATH
from gateway import build_app
from nlu import NluClient
from store.mongo import ConversationStore
from tests.conftest import DEMO_ORDERS
from tests.helpers import wait_for
from tests.telegram_standin import BotApiStandIn, callback_update, private_update, telegram_gateway

SECRET = "s3cret-token_2"
CHAT = 778899
API = "/api/backoffice"


async def test_notices_replies_and_the_survey_reach_the_customers_telegram_chat(
    tmp_path: Path, store: ConversationStore, nlu: NluClient, standin: BotApiStandIn
) -> None:
    gateway = telegram_gateway(tmp_path, store, nlu, standin, SECRET)
    await gateway.seed_orders(DEMO_ORDERS)
    updates = iter(range(9000, 9100))

    async with TestClient(TestServer(build_app(gateway))) as http:

        async def customer_says(text: str | None = None, button: str | None = None) -> None:
            update = (
                callback_update(next(updates), CHAT, button)
                if button
                else private_update(next(updates), CHAT, text=text)
            )
            response = await http.post(WEBHOOK_PATH, json=update, headers={SECRET_HEADER: SECRET})
            assert response.status == 200

        async def chat_has(words: str) -> bool:
            return any(words in s["text"] for s in standin.sent)

        await customer_says("我要投诉，快递员态度很差，东西直接扔在门口也不打电话")
        await wait_for(lambda: chat_has("投诉已登记"))
        assert gateway.backoffice is not None
        (ticket,) = await gateway.backoffice.desk.find({})
        assert ticket.type.value == "complaint" and ticket.channels == ["telegram"]
        assert ticket.category == "service_attitude" and ticket.queue == "complaints"

        _, token = await gateway.backoffice.staff.create(
            "chen", name="陈静", roles=[Role.REVIEWER], skill_groups=["complaints"]
        )
        headers = {"Authorization": f"Bearer {token}"}

        async def act(path: str, body: dict[str, object]) -> None:
            response = await http.post(f"{API}/tickets/{ticket.id}/{path}", json=body, headers=headers)
            assert response.status in (200, 201), await response.json()

        await act("claim", {})
        await wait_for(lambda: chat_has("已由专员受理"))
        await act("comments", {"text": "您好，我是投诉组陈静，已联系快递站点核实，今天内给您回复。", "public": True})
        await wait_for(lambda: chat_has("我是投诉组陈静"))
        await act("comments", {"text": "站点主管电话 0571-1234", "public": False})
        await act("transition", {"to": "in_review"})
        await act("transition", {"to": "resolved", "note": "快递员已被约谈，并为您补偿 10 元优惠券。"})
        await wait_for(lambda: chat_has("补偿 10 元优惠券"))
        await act("transition", {"to": "closed"})
        await wait_for(lambda: chat_has("请为本次服务打分"))
        survey_message = next(s for s in standin.sent if "请为本次服务打分" in s["text"])
        buttons = [b["callback_data"] for row in survey_message["reply_markup"]["inline_keyboard"] for b in row]
        assert buttons == ["1", "2", "3", "4", "5"]

        await customer_says(button="5")
        await wait_for(lambda: chat_has("0-10"))
        await customer_says("10")
        await wait_for(lambda: chat_has("感谢您的评价"))
        survey = await gateway.backoffice.surveys.for_ticket(ticket.id)
        assert survey is not None and (survey.csat, survey.nps, survey.channel) == (5, 10, "telegram")
        assert not await chat_has("站点主管电话")  # internal notes never reach the customer
        await wait_for(lambda: _all_sent(store))


async def _all_sent(store: ConversationStore) -> bool:
    return await store.count_messages(direction="out", delivered=False) == 0
