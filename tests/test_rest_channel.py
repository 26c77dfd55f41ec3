"""The REST channel's contract and its handling of bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pymongo import AsyncMongoClient

from gateway import GatewayBuilder, Settings, build_app
from gateway.settings import GatewaySettings
from nlu import OfflineNlu
from store.embedded import EmbeddedMongo
from store.models import MAX_TEXT_CHARS
from store.mongo import ConversationStore

WEBHOOK = "/webhooks/rest/webhook"


@pytest.mark.parametrize(
    ("body", "error", "field"),
    [
        (b"{not json", "invalid_json", None),
        (b"\xff\xfe\x00", "invalid_encoding", None),
        (b'["sender", "message"]', "invalid_payload", None),
        (b'{"message": "hi"}', "missing_field", "sender"),
        (b'{"sender": "a"}', "missing_field", "message"),
        (b'{"sender": "", "message": "hi"}', "invalid_field", "sender"),
        (b'{"sender": "a", "message": 42}', "invalid_field", "message"),
        (b'{"sender": "a", "message": "   "}', "empty_message", "message"),
        (b'{"sender": "a", "message": "hi", "metadata": [1]}', "invalid_field", "metadata"),
        (b'{"sender": "a", "message": "hi", "message_id": {"x": 1}}', "invalid_field", "message_id"),
    ],
)
async def test_bad_requests_get_a_clear_400_and_store_nothing(
    client: TestClient[object, object], store: ConversationStore, body: bytes, error: str, field: str | None
) -> None:
    response = await client.post(WEBHOOK, data=body, headers={"Content-Type": "application/json"})
    assert response.status == 400
    payload = await response.json()
    assert payload["error"]["code"] == error
    assert payload["error"]["message"]
    assert payload["error"]["details"].get("field") == field
    for collection in (store.messages, store.customers, store.conversations, store.events):
        assert await collection.count_documents({}) == 0


async def test_an_over_long_message_is_refused_with_the_limit(
    client: TestClient[object, object], store: ConversationStore
) -> None:
    response = await client.post(WEBHOOK, json={"sender": "a", "message": "订" * (MAX_TEXT_CHARS + 1)})
    assert response.status == 400
    payload = await response.json()
    assert payload["error"]["code"] == "message_too_long"
    assert payload["error"]["details"]["limit"] == MAX_TEXT_CHARS
    assert await store.messages.count_documents({}) == 0


async def test_a_message_at_the_limit_is_accepted(client: TestClient[object, object], store: ConversationStore) -> None:
    response = await client.post(WEBHOOK, json={"sender": "a", "message": "订" * MAX_TEXT_CHARS})
    assert response.status == 200
    assert await store.count_messages(direction="in") == 1


async def test_a_body_over_one_mebibyte_is_refused(client: TestClient[object, object]) -> None:
    response = await client.post(WEBHOOK, data=b"{" + b" " * (1024 * 1024 + 10) + b"}")
    assert response.status == 413


async def test_replies_follow_rasas_rest_shape(client: TestClient[object, object]) -> None:
    response = await client.post(WEBHOOK, json={"sender": "shape-check", "message": "你好"})
    assert response.status == 200
    assert response.content_type == "application/json"
    replies = await response.json()
    assert replies and all(set(r) <= {"recipient_id", "text", "buttons"} for r in replies)
    assert all(r["recipient_id"] == "shape-check" for r in replies)


async def test_a_store_outage_answers_503_json_and_the_retry_is_answered_once(tmp_path: Path) -> None:
    mongo = EmbeddedMongo(tmp_path / "mongo")
    await mongo.start()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo.uri, serverSelectionTimeoutMS=500)
    store = ConversationStore(client)
    gateway = (
        GatewayBuilder(Settings(gateway=GatewaySettings(var_dir=tmp_path / "var")))
        .store(store)
        .nlu(OfflineNlu("test"))
        .build()
    )
    body = {"sender": "outage", "message": "你好", "message_id": "m-1"}
    try:
        async with TestClient(TestServer(build_app(gateway))) as http:
            await mongo.stop()
            response = await http.post(WEBHOOK, json=body)
            assert response.status == 503
            assert response.headers["Retry-After"] == "5"
            assert (await response.json())["error"]["code"] == "store_unavailable"

            # The store comes back on the same socket with the same data directory: the retry goes through.
            mongo = EmbeddedMongo(tmp_path / "mongo")
            await mongo.start()
            response = await http.post(WEBHOOK, json=body)
            assert response.status == 200
            assert await store.count_messages(direction="in") == 1
    finally:
        await client.close()
        await mongo.stop()
