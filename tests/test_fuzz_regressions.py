"""Requests the API fuzzer (tests/test_api_fuzz.py) found failing with a 5xx, each kept as a
plain regression test against a real gateway on loopback."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from backoffice.settings import BackofficeSettings
from channels.app_im import WS_PATH, sign_user
from channels.telegram import SECRET_HEADER, WEBHOOK_PATH
from gateway import GatewayBuilder, Settings, build_app
from gateway.settings import GatewaySettings
from nlu import OfflineNlu
from store.mongo import ConversationStore
from tests.telegram_standin import BotApiStandIn, telegram_gateway

Client = TestClient[object, object]
STAFF_TOKEN = "regression-admin-token"
AS_STAFF = {"Authorization": f"Bearer {STAFF_TOKEN}"}


@pytest_asyncio.fixture
async def http(store: ConversationStore, tmp_path: Path) -> AsyncIterator[Client]:
    settings = Settings(
        gateway=GatewaySettings(var_dir=tmp_path / "var"), backoffice=BackofficeSettings(admin_token=STAFF_TOKEN)
    )
    gateway = GatewayBuilder(settings).store(store).nlu(OfflineNlu("not needed")).build()
    async with TestClient(TestServer(build_app(gateway), host="127.0.0.1")) as client:
        yield client


async def test_a_multipart_body_with_a_broken_part_header_is_a_400(http: Client) -> None:
    boundary = "b0undary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="image\x11"\r\n\r\nxx\r\n--{boundary}--\r\n'
    ).encode()
    response = await http.post(
        "/api/ocr", data=body, headers={**AS_STAFF, "Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    assert response.status == 400, await response.text()
    assert (await response.json())["error"]["code"] == "malformed_body"


async def test_a_telegram_update_whose_parts_are_not_objects_is_a_400(
    store: ConversationStore, tmp_path: Path, standin: BotApiStandIn
) -> None:
    gateway = telegram_gateway(tmp_path, store, OfflineNlu("not needed"), standin, "s3cret")
    async with TestClient(TestServer(build_app(gateway), host="127.0.0.1")) as http:
        for update in ({"update_id": 1, "callback_query": True}, {"update_id": 2, "message": ["x"]}):
            response = await http.post(WEBHOOK_PATH, json=update, headers={SECRET_HEADER: "s3cret"})
            assert response.status == 400, await response.text()
            assert (await response.json())["error"]["code"] == "invalid_payload"
    assert await store.messages.count_documents({}) == 0


async def test_the_app_websocket_url_opened_as_plain_http_is_a_json_400(
    store: ConversationStore, tmp_path: Path
) -> None:
    settings = Settings(gateway=GatewaySettings(var_dir=tmp_path / "var")).with_channel("app", secret="app-secret")
    gateway = GatewayBuilder(settings).store(store).nlu(OfflineNlu("not needed")).build()
    expires = int(time.time()) + 600
    query = {"user": "u1", "expires": str(expires), "token": sign_user("app-secret", "u1", expires)}
    async with TestClient(TestServer(build_app(gateway), host="127.0.0.1")) as http:
        response = await http.get(WS_PATH, params=query)
        assert response.status == 400 and response.content_type == "application/json"
        assert (await response.json())["error"]["code"] == "websocket_required"
        async with http.ws_connect(WS_PATH, params=query) as socket:  # a real websocket still opens
            await socket.send_json({"type": "typing"})


async def test_nul_characters_and_lone_surrogates_are_a_400_not_a_store_error(
    http: Client, store: ConversationStore
) -> None:
    # A NUL in the sender id made the second message from it a 503 (the customer lookup missed
    # and the insert hit the unique index); a lone surrogate in the text could not be encoded (500).
    bodies = [
        b'{"sender": "a\\u0000b", "message": "hi"}',
        b'{"sender": "a", "message": "\\ud800 hi"}',
        b'{"sender": "a", "message": "hi", "metadata": {"k\\u0000": 1}}',
        b'{"sender": "a\\u0006b", "message": "hi"}',
    ]
    for body in bodies * 2:
        response = await http.post("/webhooks/rest/webhook", data=body, headers={"Content-Type": "application/json"})
        assert response.status == 400, (body, await response.text())
        assert (await response.json())["error"]["code"] in ("invalid_text", "invalid_field")
    assert await store.messages.count_documents({}) == 0


async def test_an_integer_beyond_64_bits_in_the_metadata_is_a_400(http: Client, store: ConversationStore) -> None:
    body = {"sender": "a", "message": "hi", "metadata": {"n": [1, {"big": 2**64}]}}
    response = await http.post("/webhooks/rest/webhook", json=body)
    assert response.status == 400, await response.text()
    assert "64 bits" in (await response.json())["error"]["message"]
    assert await store.messages.count_documents({}) == 0
