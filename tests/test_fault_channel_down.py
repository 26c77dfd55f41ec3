"""Fault: the outbound channel fails for a while, then recovers. Telegram's Bot API (the stand-in)
answers 500, then 429 with ``retry_after``, then refuses connections, and comes back: every
reply is delivered afterwards, once, in order per chat, with the outbox's backoff between tries
(small ``OUTBOX_*`` delays) and never sooner than the 429 asked. Customers' messages sent during
the outage are all taken (200) and answered."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from backoffice.settings import BackofficeSettings
from channels.telegram import SECRET_HEADER, WEBHOOK_PATH, TelegramInput, TelegramOutput, make_bot
from gateway import GatewayBuilder, Settings, build_app
from gateway.settings import GatewaySettings, OutboxSettings
from nlu import NluClient
from store.media import MediaStore
from store.mongo import ConversationStore
from tests.conftest import DEMO_ORDERS
from tests.faults_support import assert_every_inbound_answered, assert_stored_once, assert_telegram_sent_once_in_order
from tests.helpers import wait_for
from tests.telegram_standin import TOKEN, BotApiStandIn, private_update

SECRET = "channel-down-secret"
CHATS = (710001, 710002)
RETRY_AFTER = 1
CONVERSATION = ("你好", "查一下订单202611150001", "谢谢")


async def test_replies_wait_out_a_telegram_outage_and_go_out_once_in_order(
    tmp_path: Path, store: ConversationStore, nlu: NluClient, standin: BotApiStandIn
) -> None:
    settings = Settings(
        gateway=GatewaySettings(var_dir=tmp_path / "var"),
        outbox=OutboxSettings(base_delay=0.05, max_delay=0.4, max_attempts=60, poll_interval=0.05),
        backoffice=BackofficeSettings(sweep_seconds=0),
    )
    bot = make_bot(TOKEN, standin.base_url)
    media = MediaStore(settings.media_root)
    gateway = (
        GatewayBuilder(settings).store(store).nlu(nlu).media(media)
        .channels(TelegramInput(bot, media, webhook_secret=SECRET)).senders(TelegramOutput(bot)).build()
    )  # fmt: skip
    await gateway.seed_orders(DEMO_ORDERS)
    accepted: list[str] = []
    update_ids = iter(range(9100, 9200))

    async def customers_write(http: TestClient[object, object], text: str) -> None:
        for chat in CHATS:
            update_id = next(update_ids)
            response = await http.post(
                WEBHOOK_PATH, json=private_update(update_id, chat, text=text), headers={SECRET_HEADER: SECRET}
            )
            assert response.status == 200, "taken although replies cannot go out"
            accepted.append(str(update_id))

    def statuses(status: int) -> list[float]:
        return [at for at, _, answered in standin.attempt_log if answered == status]

    async with TestClient(TestServer(build_app(gateway))) as http:
        standin.send_failure = (500, None)
        await customers_write(http, CONVERSATION[0])

        async def backed_off() -> bool:
            return len(statuses(500)) >= 5 * len(CHATS)

        await wait_for(backed_off, 10)
        standin.send_failure = (429, RETRY_AFTER)  # flood control: "retry after 1 s"
        await customers_write(http, CONVERSATION[1])

        async def rate_limited_twice() -> bool:
            return len(statuses(429)) >= 2

        await wait_for(rate_limited_twice, 10)
        await standin.stop()  # now nothing listens: connections are refused
        await customers_write(http, CONVERSATION[2])
        await asyncio.sleep(1.0)
        standin.send_failure = None
        await standin.start()  # same port

        async def all_delivered() -> bool:
            await asyncio.sleep(0.02)
            return await store.count_messages(channel="telegram", direction="out", delivered=False) == 0

        await wait_for(all_delivered, 15)

    # Backoff: a chat's first reply was tried at growing intervals while the API answered 500 …
    first_chat = [at for at, chat, status in standin.attempt_log if chat == str(CHATS[0]) and status == 500]
    gaps = [later - earlier for earlier, later in itertools.pairwise(first_chat)]
    assert len(gaps) >= 4 and gaps[-1] > 2 * gaps[0], f"no backoff between tries: {gaps}"
    # … and after a 429 nobody was tried again before retry_after had passed.
    for limited_at in statuses(429):
        following = [at for at, _, _ in standin.attempt_log if at > limited_at]
        assert not following or following[0] - limited_at >= RETRY_AFTER - 0.05, "retried inside retry_after"

    await assert_stored_once(store, "telegram", accepted)
    await assert_every_inbound_answered(store, "telegram")
    await assert_telegram_sent_once_in_order(store, standin)
    for chat in CHATS:
        texts = [s["text"] for s in standin.sent if s["chat_id"] == str(chat)]
        assert any("202611150001" in t for t in texts), texts
    retried = await store.messages.count_documents({"channel": "telegram", "direction": "out", "attempts": {"$gt": 1}})
    assert retried >= len(CHATS), "the outage was felt (and waited out) by the outbox"
