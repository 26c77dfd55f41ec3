"""Who writes on the REST webhook is proven, not claimed (found by an outside probe: a phone number
in ``metadata`` made the bot act for that customer, overwrote their identities, and knowing a
``sender`` took over their conversation and replayed their replies)."""

from __future__ import annotations

import time

from aiohttp.test_utils import TestClient

from channels.customer_token import sign_customer_token
from channels.rest import SESSION_HEADER
from gateway import Gateway
from store.mongo import ConversationStore
from tests.helpers import CUSTOMER_TOKEN_SECRET, Chat, unique_sender
from tests.selfservice import Customer

WEBHOOK = "/webhooks/rest/webhook"


async def _post(http: TestClient[object, object], body: dict[str, object], **headers: str) -> tuple[int, object]:
    response = await http.post(WEBHOOK, json=body, headers=headers)
    return response.status, await response.json()


async def test_a_phone_number_in_metadata_is_only_a_hint(
    client: TestClient[object, object], gateway: Gateway, store: ConversationStore
) -> None:
    victim = Customer(client, gateway)
    order = await victim.order("paid", items=[{"sku": "SKU-TEA-01", "name": "西湖龙井", "quantity": 1, "price": 268.0}])
    await victim.say("你好")
    victim_before = await store.customers.find_one({"identities.phone": victim.phone})
    assert victim_before is not None

    attacker = unique_sender()
    status, replies = await _post(
        client, {"sender": attacker, "message": "查订单", "metadata": {"phone": victim.phone, "email": "x@evil.test"}}
    )
    assert status == 200
    text = "".join(str(r["text"]) for r in replies)  # type: ignore[union-attr]
    assert order.order_id not in text and "龙井" not in text, "the victim's orders are not shown"

    victim_after = await store.customers.find_one({"_id": victim_before["_id"]})
    assert victim_after is not None and victim_after["identities"] == victim_before["identities"]
    attacker_doc = await store.customers.find_one({"identities.rest": attacker})
    assert attacker_doc is not None and attacker_doc["_id"] != victim_before["_id"]
    assert "phone" not in attacker_doc["identities"], "a claim links nothing"
    stored = await store.messages.find_one({"channel_message_id": {"$exists": True}, "text": "查订单"})
    assert stored is not None and stored["metadata"]["phone"] == victim.phone, "kept as a hint"


async def test_knowing_a_sender_is_not_enough_to_write_as_it(
    client: TestClient[object, object], store: ConversationStore
) -> None:
    owner = Chat(client, unique_sender())
    await owner.send("你好", message_id="m-1")
    count = await store.count_messages(direction="in")

    status, body = await _post(client, {"sender": owner.sender, "message": "查订单"})
    assert status == 403 and body["error"]["code"] == "session_required"  # type: ignore[index]
    status, body = await _post(client, {"sender": owner.sender, "message": "查订单"}, **{SESSION_HEADER: "forged"})
    assert status == 403 and body["error"]["code"] == "session_mismatch"  # type: ignore[index]
    other = Chat(client, unique_sender())
    await other.send("hi")
    assert other.session_token is not None
    status, body = await _post(
        client, {"sender": owner.sender, "message": "查订单"}, **{SESSION_HEADER: other.session_token}
    )
    assert status == 403, "another sender's token is no key to this one"
    assert await store.count_messages(direction="in") == count + 1, "only the other sender's message was stored"

    # The owner carries on with its token.
    assert await owner.texts("谢谢")


async def test_a_replayed_message_id_gives_a_stranger_nothing(client: TestClient[object, object]) -> None:
    owner = Chat(client, unique_sender(), phone="13912340000")
    await owner.send("你好", message_id="first")
    await owner.send("我的手机号是13912340000", message_id="second")
    status, body = await _post(client, {"sender": owner.sender, "message": "x", "message_id": "second"})
    assert status == 403 and "text" not in str(body)


async def test_a_client_that_lost_the_first_answer_may_retry_it(client: TestClient[object, object]) -> None:
    sender = unique_sender()
    status, first = await _post(client, {"sender": sender, "message": "你好", "message_id": "hello-1"})
    assert status == 200
    response = await client.post(WEBHOOK, json={"sender": sender, "message": "你好", "message_id": "hello-1"})
    assert response.status == 200 and await response.json() == first, "the same replies, not a second turn"
    token = response.headers[SESSION_HEADER]
    status, _ = await _post(
        client, {"sender": sender, "message": "查订单", "message_id": "2"}, **{SESSION_HEADER: token}
    )
    assert status == 200


async def test_customer_tokens_that_do_not_verify_are_refused(
    client: TestClient[object, object], store: ConversationStore
) -> None:
    count = await store.count_messages(direction="in")
    bad = {
        "forged": sign_customer_token("not-the-shops-secret", {"phone": "13800138000"}),
        "expired": sign_customer_token(CUSTOMER_TOKEN_SECRET, {"phone": "13800138000", "exp": int(time.time()) - 1}),
        "no expiry": sign_customer_token(CUSTOMER_TOKEN_SECRET, {"phone": "13800138000", "exp": None}),
        "alg none": "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJwaG9uZSI6IjEzODAwMTM4MDAwIn0.",
        "garbage": "a.b.c",
    }
    for name, token in bad.items():
        status, body = await _post(
            client, {"sender": unique_sender(), "message": "查订单", "metadata": {"customer_token": token}}
        )
        assert status == 401, name
        assert body["error"]["code"] == "invalid_customer_token", name  # type: ignore[index]
    assert await store.count_messages(direction="in") == count, "nothing stored"


async def test_identities_are_never_overwritten(
    client: TestClient[object, object], gateway: Gateway, store: ConversationStore
) -> None:
    """The customer on a second device: a valid token links the new sender's conversation to them,
    and adds what they lacked, but the e-mail and REST sender they have stay as they are."""
    first = Chat(client, unique_sender(), phone="13911112222", email="wang@example.com")
    await first.send("你好")
    second = Chat(client, unique_sender(), phone="13911112222", email="other@example.com")
    await second.send("你好")
    customer = await store.customers.find_one({"identities.phone": "13911112222"})
    assert customer is not None
    assert customer["identities"]["email"] == "wang@example.com"
    assert customer["identities"]["rest"] == first.sender
    conversation = await store.conversations.find_one({"open_key": f"rest:{second.sender}"})
    assert conversation is not None and conversation["customer_id"] == customer["_id"]
    # The second device's next message, without the token, is still the same customer.
    second.identities = {}
    await second.send("查订单")
    message = await store.messages.find_one({"text": "查订单", "conversation_id": conversation["_id"]})
    assert message is not None and message["customer_id"] == customer["_id"]


async def test_credentials_are_not_stored(client: TestClient[object, object], store: ConversationStore) -> None:
    chat = Chat(client, unique_sender(), phone="13900001111")
    await chat.send("你好", message_id="m")
    stored = await store.messages.find_one({"channel_message_id": f"{chat.sender}:m"})
    assert stored is not None and "customer_token" not in stored["metadata"]


async def test_order_numbers_cannot_be_walked_through(client: TestClient[object, object], gateway: Gateway) -> None:
    """Security finding 7: order numbers are a date and a counter, and any of them showed its
    status. A customer who looks up order numbers that are not theirs is stopped after ten in an
    hour; their own orders still answer."""
    owner = Customer(client, gateway)
    orders = [await owner.order("shipped") for _ in range(3)]
    walker = Chat(client, unique_sender())
    answered = 0
    for n in range(12):
        replies = " ".join(await walker.texts(f"查一下订单 2026{n:04d}99990{n % 10}"))
        answered += "没有找到" in replies
    assert answered == 10  # ten unknown numbers told "not found", then no more answers
    refused = " ".join(await walker.texts(f"订单{orders[0].order_id}到哪了"))
    assert "查询了较多" in refused and orders[0].order_id not in refused
    assert "已发货" in " ".join(await owner.chat.texts(f"订单{orders[1].order_id}到哪了"))  # the owner is not limited
