"""What every fault test checks at the end: no accepted message lost, none duplicated.

"Accepted" is what a channel acknowledged (a 200 to REST or Telegram, an ack frame on the app
socket): each such channel message id is stored exactly once, every reply is recorded once
(keyed by the inbound message and its place in the turn), delivered, and sent once, in order,
to each recipient (counted at the provider stand-in).
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from typing import Any

from channels.app_im import sign_user
from store.mongo import ConversationStore
from tests.telegram_standin import BotApiStandIn


async def assert_stored_once(store: ConversationStore, channel: str, accepted: list[str]) -> None:
    """Each accepted channel message id of ``channel`` is stored once, and nothing else is."""
    for channel_message_id in accepted:
        count = await store.count_messages(channel=channel, direction="in", channel_message_id=channel_message_id)
        assert count == 1, f"{channel} message {channel_message_id} stored {count} times"
    assert await store.count_messages(channel=channel, direction="in") == len(accepted)


async def assert_every_inbound_answered(store: ConversationStore, channel: str) -> None:
    """Every inbound message of ``channel`` ran its turn and has its replies recorded."""
    async for inbound in store.messages.find({"channel": channel, "direction": "in"}):
        assert inbound["processed"], f"{channel} message {inbound['channel_message_id']} was never processed"
        assert await store.count_messages(in_reply_to=inbound["_id"]) >= 1, f"{inbound['text']!r} got no reply"


async def telegram_replies_by_chat(store: ConversationStore) -> dict[str, list[str]]:
    """The store's Telegram replies per chat, in the order they were recorded."""
    replies: dict[str, list[str]] = defaultdict(list)
    async for reply in store.messages.find({"channel": "telegram", "direction": "out"}).sort("_id", 1):
        assert reply["delivered"] and not reply["failed"], f"reply {reply['text']!r} not delivered"
        replies[str(reply["recipient_id"])].append(str(reply["text"]))
    return dict(replies)


async def assert_telegram_sent_once_in_order(store: ConversationStore, standin: BotApiStandIn) -> None:
    """The stand-in received exactly the stored replies: each once, in order per chat."""
    sent: dict[str, list[str]] = defaultdict(list)
    for message in standin.sent:
        sent[message["chat_id"]].append(message["text"])
    stored = await telegram_replies_by_chat(store)
    assert dict(sent) == stored, f"sent {dict(sent)}, stored {stored}"


def app_query(secret: str, user: str) -> str:
    """The signed query string the shop's backend gives an app user's client."""
    expires = int(time.time()) + 3600
    return f"user={user}&expires={expires}&token={sign_user(secret, user, expires)}"


async def next_frame(socket: Any, *kinds: str, timeout: float = 15.0) -> dict[str, Any]:
    """The next frame on an app socket of one of ``kinds`` (any kind if none given), skipping others."""
    while True:
        frame: dict[str, Any] = json.loads((await socket.receive(timeout=timeout)).data)
        if not kinds or frame["type"] in kinds:
            return frame
