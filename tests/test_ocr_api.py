"""The OCR endpoints on an in-process gateway (no Rasa needed: the NLU stays offline)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import FormData
from aiohttp.test_utils import TestClient, TestServer

from backoffice.permissions import Role
from backoffice.settings import BackofficeSettings
from gateway import Gateway, GatewayBuilder, Settings, build_app
from gateway.app import GATEWAY_KEY
from gateway.settings import GatewaySettings
from media_ocr.pipeline import OcrWorkers
from nlu import OfflineNlu
from shop import Order
from store import Attachment, InboundMessage
from store.mongo import ConversationStore
from tests.ocr_support import png, sample

Client = TestClient[object, object]
STAFF_TOKEN = "ocr-test-admin-token"
AS_STAFF = {"Authorization": f"Bearer {STAFF_TOKEN}"}


def ocr_gateway(store: ConversationStore, tmp_path: Path, workers: OcrWorkers) -> Gateway:
    settings = Settings(
        gateway=GatewaySettings(var_dir=tmp_path / "var"), backoffice=BackofficeSettings(admin_token=STAFF_TOKEN)
    )
    gateway = GatewayBuilder(settings).store(store).nlu(OfflineNlu("test")).build()
    gateway.ocr_workers = workers
    return gateway


@pytest_asyncio.fixture
async def http(store: ConversationStore, tmp_path: Path) -> AsyncIterator[Client]:
    # Threads keep these tests quick; test_the_gateway_keeps_serving_while_a_worker_reads uses processes.
    gateway = ocr_gateway(store, tmp_path, OcrWorkers("combined", use_threads=True))
    async with TestClient(TestServer(build_app(gateway)), headers=AS_STAFF) as client:
        assert gateway.orders is not None
        await gateway.orders.upsert([Order.model_validate(sample("label", "photo").slip.order_document())])
        yield client


async def upload(http: Client, data: bytes, name: str = "label.jpg") -> dict[str, object]:
    form = FormData()
    form.add_field("image", data, filename=name, content_type="image/png")
    response = await http.post("/api/ocr", data=form)
    assert response.status == 201, await response.text()
    body: dict[str, object] = await response.json()
    return body


async def test_an_uploaded_photo_is_read_checked_stored_and_masked(http: Client) -> None:
    document = sample("label", "photo")
    result = await upload(http, document.png())
    assert {"image", "fields", "confidence", "needs_review", "review_reasons", "engine"} <= set(result)
    assert result["image"] == "label.jpg" and result["engine"] == "combined"
    assert result["fields"] == document.slip.expected_fields()
    assert result["needs_review"] is False and result["order_checked"] is True
    assert result["media_id"] and result["id"]
    assert {"format": "QR Code", "text": document.slip.order_id} in result["barcodes"]  # type: ignore[operator]
    text = "\n".join(result["text"])  # type: ignore[arg-type]
    # Personal data is masked (or, on lines that cannot hold a field, not even read to the end).
    assert document.slip.phone not in text and document.slip.name not in text
    assert document.slip.name[0] + "*" in text

    again = await http.get(f"/api/ocr/{result['id']}")
    assert again.status == 200 and await again.json() == result


async def test_raw_image_bodies_and_stored_media_can_be_read(http: Client) -> None:
    response = await http.post(
        "/api/ocr?name=slip.png&engine=rapidocr", data=png("lines"), headers={"Content-Type": "image/png"}
    )
    assert response.status == 201, await response.text()
    first = await response.json()
    assert first["engine"] == "rapidocr" and first["image"] == "slip.png"

    by_reference = await http.post("/api/ocr", json={"media_id": first["media_id"], "engine": "rapidocr"})
    assert by_reference.status == 201
    second = await by_reference.json()
    assert second["fields"] == first["fields"] and second["id"] != first["id"]


async def test_a_channel_attachment_is_read_with_its_conversation(http: Client, store: ConversationStore) -> None:
    gateway_media = await upload(http, png("label", "photo"))
    attachment = Attachment(
        kind="image", content_type="image/png", media_id=str(gateway_media["media_id"]), filename="p.png"
    )
    receipt = await store.accept_inbound(
        InboundMessage(channel="telegram", sender_id="42", channel_message_id="m-1", attachments=[attachment])
    )
    response = await http.post("/api/ocr", json={"message_id": receipt.message.id, "attachment": 0})
    assert response.status == 201, await response.text()
    result = await response.json()
    assert result["source"] == {
        "channel": "telegram",
        "message_id": receipt.message.id,
        "conversation_id": receipt.conversation.id,
        "attachment": 0,
    }
    assert result["image"] == "p.png" and result["fields"] == gateway_media["fields"]
    missing = await http.post("/api/ocr", json={"message_id": receipt.message.id, "attachment": 3})
    assert missing.status == 404


async def test_corrections_are_recorded_and_validated(http: Client) -> None:
    result = await upload(http, png("invoice"))  # its order is not in the shop
    assert result["needs_review"] is True
    url = f"/api/ocr/{result['id']}/corrections"

    response = await http.post(url, json={"field": "reason", "value": "破损", "why": ""})
    assert response.status == 400 and (await response.json())["error"]["code"] == "missing_field"
    response = await http.post(url, json={"field": "colour", "value": "red", "who": "agent:li", "why": "x"})
    assert response.status == 400 and (await response.json())["error"]["code"] == "invalid_value"
    response = await http.post(url, json={"field": "reason", "value": "不喜欢", "who": "agent:li", "why": "x"})
    assert response.status == 400

    response = await http.post(url, json={"field": "reason", "value": "破损", "why": "customer said"})
    assert response.status == 200, await response.text()
    corrected = await response.json()
    assert corrected["fields"]["reason"] == "破损" and corrected["confidence"]["reason"] == 1.0
    (correction,) = corrected["corrections"]
    assert correction["who"].startswith("staff:") and correction["why"] == "customer said"  # who signed in
    assert not any(r.startswith("reason:") for r in corrected["review_reasons"])
    assert any(r.startswith("order_id: no order") for r in corrected["review_reasons"])  # still not in the shop

    assert (
        await http.post("/api/ocr/nope/corrections", json={"field": "reason", "value": "破损", "who": "a", "why": "b"})
    ).status == 404


async def test_the_review_image_is_the_photo_with_fields_outlined(http: Client) -> None:
    result = await upload(http, png("label", "photo"))
    response = await http.get(f"/api/ocr/{result['id']}/image")
    assert response.status == 200 and response.content_type == "image/png"
    assert (await response.read()).startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("kwargs", "status", "error"),
    [
        ({"data": b"not an image", "headers": {"Content-Type": "image/jpeg"}}, 400, "unreadable_image"),
        ({"data": b"", "headers": {"Content-Type": "image/png"}}, 400, "empty_image"),
        ({"json": {"media_id": "0" * 64}}, 404, "not_found"),
        ({"json": {"nothing": 1}}, 400, "missing_field"),
        ({"data": b"x", "headers": {"Content-Type": "text/plain"}}, 415, "unsupported_media_type"),
        ({"data": b"\xff" * (15 * 1024 * 1024 + 1), "headers": {"Content-Type": "image/png"}}, 413, "too_large"),
    ],
)
async def test_bad_requests_get_json_errors(http: Client, kwargs: dict[str, object], status: int, error: str) -> None:
    response = await http.post("/api/ocr", **kwargs)  # type: ignore[arg-type]
    assert response.status == status
    assert (await response.json())["error"]["code"] == error


async def test_photos_are_for_signed_in_staff_who_work_on_tickets_or_chats(http: Client) -> None:
    gateway = http.server.app[GATEWAY_KEY]
    assert gateway.backoffice is not None
    _, quality_token = await gateway.backoffice.staff.create("qa1", name="QA", roles=[Role.QUALITY])
    for headers, status in (({"Authorization": ""}, 401), ({"Authorization": f"Bearer {quality_token}"}, 403)):
        for method, path in (("POST", "/api/ocr"), ("GET", "/api/ocr/x"), ("GET", "/api/ocr/x/image")):
            response = await http.request(method, path, json={"media_id": "x"}, headers=headers)
            assert response.status == status, (method, path)
            assert (await response.json())["error"]["code"] in ("unauthorized", "forbidden")


async def test_an_unknown_result_is_not_found(http: Client) -> None:
    assert (await http.get("/api/ocr/000000000000000000000000")).status == 404


async def test_the_gateway_keeps_serving_while_a_worker_reads(store: ConversationStore, tmp_path: Path) -> None:
    gateway = ocr_gateway(store, tmp_path, OcrWorkers("rapidocr", processes=1))
    async with TestClient(TestServer(build_app(gateway)), headers=AS_STAFF) as client:
        form = FormData()
        form.add_field("image", png("form", "noise"), filename="form.png", content_type="image/png")
        reading = asyncio.create_task(client.post("/api/ocr", data=form))
        slowest = 0.0
        answered = 0
        while not reading.done():
            started = time.perf_counter()
            await client.get("/health")  # 503: the NLU is offline, but the loop answers
            slowest = max(slowest, time.perf_counter() - started)
            answered += 1
            await asyncio.sleep(0.05)
        response = await reading
        assert response.status == 201, await response.text()
        assert answered >= 5 and slowest < 0.5


async def test_a_reading_is_shown_only_to_whoever_may_see_its_photo(http: Client, store: ConversationStore) -> None:
    # The probe's finding: any reviewer could read any result and name anyone as a correction's author.
    gateway = http.app[GATEWAY_KEY]  # type: ignore[union-attr]
    assert gateway.backoffice is not None and gateway.tickets is not None
    staff = gateway.backoffice.staff
    _, reviewer = await staff.create("rev-1", name="审核", roles=[Role.REVIEWER], skill_groups=["no-such-queue"])
    _, agent = await staff.create("cs-1", name="客服", roles=[Role.CUSTOMER_SERVICE])
    as_reviewer = {"Authorization": f"Bearer {reviewer}"}
    as_agent = {"Authorization": f"Bearer {agent}"}

    uploaded = await upload(http, png("invoice"))  # by the admin, for no ticket
    for headers in (as_reviewer, as_agent):
        assert (await http.get(f"/api/ocr/{uploaded['id']}", headers=headers)).status == 404
        assert (await http.get(f"/api/ocr/{uploaded['id']}/image", headers=headers)).status == 404
        correction = {"field": "reason", "value": "破损", "why": "x"}
        refused = await http.post(f"/api/ocr/{uploaded['id']}/corrections", json=correction, headers=headers)
        assert refused.status == 404
        queue = await (await http.get("/api/ocr/review", headers=headers)).json()
        assert uploaded["id"] not in [r["id"] for r in queue["results"]]

    # A photo sent in a conversation is the agents' to read; the reviewer sees it once a ticket
    # of their queue holds it.
    media_id = str(uploaded["media_id"])
    attachment = Attachment(kind="image", content_type="image/png", media_id=media_id, filename="p.png")
    receipt = await store.accept_inbound(
        InboundMessage(channel="telegram", sender_id="77", channel_message_id="m-77", attachments=[attachment])
    )
    sent = await (await http.post("/api/ocr", json={"message_id": receipt.message.id, "attachment": 0})).json()
    assert (await http.get(f"/api/ocr/{sent['id']}", headers=as_agent)).status == 200
    assert (await http.get(f"/api/ocr/{sent['id']}", headers=as_reviewer)).status == 404
    ticket, _ = await gateway.tickets.open(
        type=None, customer_id=receipt.conversation.customer_id, summary="发票抬头错了", conversation_id=None,
        channel="telegram", intents=["invoice"], ocr_result_ids=[str(sent["id"])],
    )  # fmt: skip
    await staff.update("rev-1", skill_groups=[ticket.queue])
    assert (await http.get(f"/api/ocr/{sent['id']}", headers=as_reviewer)).status == 200

    # The correction's author is whoever signed in, whatever the body says.
    corrected = await http.post(
        f"/api/ocr/{sent['id']}/corrections",
        json={"field": "reason", "value": "破损", "who": "staff:someone-else", "why": "看图"},
        headers=as_agent,
    )
    assert corrected.status == 200, await corrected.text()
    assert (await corrected.json())["corrections"][-1]["who"] == "staff:cs-1"
