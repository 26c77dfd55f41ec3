"""The downstream callbacks as a provider would send them: bad ones are refused with a clear 4xx and
change nothing; good ones arriving out of order still end where they would in order; and every
callback replayed twice, shuffled, changes nothing at all."""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from backoffice.routing.pickups import PickupStatus
from downstream.events import ScanState
from downstream.signing import signed_headers
from gateway import Gateway
from nlu import NluClient
from shop.aftersales import RequestType, Step
from standins.callbacks import SentCallback
from store.mongo import ConversationStore
from tests.downstream_support import loop_gateway, settled, snapshot, standins
from tests.helpers import wait_for
from tests.selfservice import Customer

SHANGHAI = "上海市浦东新区张江路 88 号 2 号楼 301"
CUP_AND_GIFT = [
    {"sku": "SKU-CUP-02", "name": "保温杯 480ml", "quantity": 1, "price": 89.0},
    {"sku": "SKU-GIFT-BAG", "name": "礼品袋", "quantity": 1, "price": 0.0, "category": "gift"},
]


async def _return(customer: Customer, gateway: Gateway) -> str:
    order = await customer.order("delivered", delivered_days_ago=2)
    assert gateway.orders is not None
    await gateway.orders.upsert([order.model_copy(update={"address": SHANGHAI})])
    await customer.say("这个杯子不想要了，我要退货")
    await customer.say("明天 09:00-12:00")
    assert "极速审核" in await customer.say("确认")
    (request,) = [r for r in await customer.requests() if r.type is RequestType.RETURN_REFUND]
    return request.id


async def _post(gateway: Gateway, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, object]]:
    url = f"http://127.0.0.1:{gateway.settings.gateway.port}{path}"
    async with aiohttp.ClientSession() as http, http.post(url, data=body, headers=headers) as response:
        return response.status, await response.json()


async def test_bad_callbacks_are_refused_with_a_clear_4xx_and_change_nothing(
    tmp_path: Path, store: ConversationStore, nlu: NluClient
) -> None:
    async with loop_gateway(tmp_path, store, nlu) as (gateway, http):
        payment, _, _ = standins(gateway)
        customer = Customer(http, gateway)
        await customer.order("paid")
        await customer.say("还没发货，帮我取消订单退款")
        await customer.say("确认")
        (request,) = await customer.requests()
        await wait_for(lambda: _has(payment.refunds, request.id))
        payment.callbacks.hold = True
        (good,) = [await payment.settle(request.id)]
        await settled(gateway)
        before = await snapshot(store)
        path = "/downstream/payment/refunds"
        secret = payment.secret

        wrong = {**signed_headers("not-the-secret", good.body), "Content-Type": "application/json"}
        assert await _post(gateway, path, good.body, wrong) == (
            401,
            {
                "error": {
                    "code": "invalid_signature",
                    "message": "the signature does not match the body and timestamp",
                    "details": {},
                }
            },
        )  # fmt: skip
        unsigned = await _post(gateway, path, good.body, {"Content-Type": "application/json"})
        assert unsigned[0] == 401 and unsigned[1]["error"]["code"] == "invalid_signature"
        stale = signed_headers(secret, good.body, now=time.time() - 3600)
        status, answer = await _post(gateway, path, good.body, stale)
        assert status == 401 and answer["error"]["code"] == "stale_timestamp" and "window" in answer["error"]["message"]
        tampered = good.body.replace(b'"refund": 8900', b'"refund": 8000')
        assert tampered != good.body
        status, answer = await _post(gateway, path, tampered, signed_headers(secret, good.body))
        assert status == 401 and answer["error"]["code"] == "invalid_signature"  # signed for another body
        unknown = json.loads(good.body)
        unknown["resource"]["out_refund_no"] = "AS20990101000001"
        body = json.dumps(unknown).encode()
        status, answer = await _post(gateway, path, body, signed_headers(secret, body))
        error = answer["error"]
        assert status == 404 and error["code"] == "unknown_request" and "AS20990101000001" in error["message"]
        for broken in (b"{not json", b"[]", json.dumps({"id": "EV-1", "event_type": "REFUND.SUCCESS"}).encode()):
            status, answer = await _post(gateway, path, broken, signed_headers(secret, broken))
            assert status == 400 and answer["error"]["code"] == "malformed_body", answer
        courier_form = b"param=%7B%22lastResult%22%3A1%7D"
        status, answer = await _post(gateway, "/downstream/courier/tracking", courier_form,
                                     signed_headers(gateway.downstream_secrets.courier, courier_form))  # type: ignore[union-attr]  # fmt: skip
        assert status == 400 and answer["error"]["code"] == "malformed_body"
        huge = b"x" * (300 * 1024)
        status, answer = await _post(gateway, path, huge, signed_headers(secret, huge))
        assert status == 413 and answer["error"]["code"] == "too_large"
        assert await snapshot(store) == before  # nothing stored, nothing changed
        (request,) = await customer.requests()
        assert request.status is Step.PAYMENT_PROCESSING

        payment.callbacks.hold = False
        delivered = await payment.callbacks.deliver(good)
        assert delivered.status == 200
        (request,) = await customer.requests()
        assert request.status is Step.COMPLETED


async def test_callbacks_out_of_order_end_as_in_order_and_replays_change_nothing(
    tmp_path: Path, store: ConversationStore, nlu: NluClient
) -> None:
    async with loop_gateway(tmp_path, store, nlu) as (gateway, http):
        payment, warehouse, courier = standins(gateway)
        customer = Customer(http, gateway)
        return_id = await _return(customer, gateway)
        await wait_for(lambda: _has(courier.bookings, return_id))
        await wait_for(lambda: _has(warehouse.orders["returns"], return_id))

        # The courier and the warehouse report in the order things happened; the gateway hears
        # them shuffled: the quality check first, the courier's collection after it.
        courier.callbacks.hold = warehouse.callbacks.hold = True
        await courier.pickup_event(return_id, "assigned")
        await courier.pickup_event(return_id, "collected")
        await warehouse.received(return_id)
        await warehouse.quality_check(return_id, passed=True)
        held = [*courier.callbacks.held, *warehouse.callbacks.held]
        courier.callbacks.hold = warehouse.callbacks.hold = False
        for callback in (held[3], held[1], held[2], held[0]):  # qc, collected, received, assigned
            sent = await (warehouse if "warehouse" in callback.url else courier).callbacks.deliver(callback)
            assert sent.status == 200, sent.answer
        waybill = courier.bookings[return_id]["kuaidinum"]
        await wait_for(lambda: _has(payment.refunds, return_id))
        assert (await payment.settle(return_id)).status == 200

        # A resend too: dispatched, then scans pushed newest-state-first.
        await customer.order("delivered", delivered_days_ago=1, items=CUP_AND_GIFT)
        await customer.say("收到了但是赠品没有，少发了礼品袋")
        await customer.say("确认")
        (resend,) = [r for r in await customer.requests() if r.type is RequestType.RESEND]
        await wait_for(lambda: _has(warehouse.orders["outbounds"], resend.id))
        shipped = await warehouse.shipped(resend.id)
        assert shipped.status == 200
        tracking = (await _request(gateway, resend.id)).details["tracking_number"]
        await wait_for(lambda: _has(courier.subscriptions, tracking))
        courier.callbacks.hold = True
        first = time.time() - 3600
        for n, (state, where) in enumerate([(ScanState.COLLECTED, "已揽收"), (ScanState.IN_TRANSIT, "运输中"),
                                            (ScanState.SIGNED, "已签收")]):  # fmt: skip
            await courier.scan(tracking, state, where, at=datetime.fromtimestamp(first + 600 * n, UTC))
        courier.callbacks.hold = False
        scans = courier.callbacks.held[-3:]
        for callback in reversed(scans):  # the push with every scan first, the first scan's push last
            assert (await courier.callbacks.deliver(callback)).status == 200

        await settled(gateway)
        returned = await _request(gateway, return_id)
        assert returned.status is Step.COMPLETED
        steps = [e.step for e in returned.timeline]
        assert steps.count(Step.GOODS_RECEIVED) == 1 and steps.count(Step.COMPLETED) == 1
        assert gateway.pickups is not None
        pickup = await gateway.pickups.get(return_id)
        assert pickup is not None and pickup.status is PickupStatus.PICKED_UP and pickup.tracking_number == waybill
        resent = await _request(gateway, resend.id)
        assert resent.status is Step.COMPLETED and resent.timeline[-1].note == f"运单 {tracking} 已签收"
        assert gateway.fulfilment is not None
        parcel = await gateway.fulfilment.parcels.find_one({"_id": tracking})
        assert parcel is not None and parcel["state"] == "signed" and len(parcel["scans"]) == 3
        texts = [d["text"] async for d in store.db["messages"].find({"direction": "out"})]
        assert sum(t.startswith("退款成功") for t in texts) == 1
        assert sum("补发商品已发出" in t for t in texts) == 1 and sum("已签收" in t for t in texts) == 1

        # Every callback the systems sent, twice each, shuffled: acknowledged, and nothing changes.
        before = await snapshot(store)
        every: list[tuple[object, SentCallback]] = []
        for system in (payment, warehouse, courier):
            every += [(system, c) for c in system.callbacks.sent if c.status == 200]
        assert len(every) == 9  # 4 pick-up and warehouse reports, the refund, the dispatch, 3 scan pushes
        replays = every * 2
        random.Random(23).shuffle(replays)
        for system, callback in replays:
            again = await system.callbacks.replay(callback, resign=True)  # type: ignore[attr-defined]
            assert again.status == 200 and again.answer["duplicate"] is True, again.answer
        await settled(gateway)
        assert await snapshot(store) == before


async def _request(gateway: Gateway, request_id: str):
    assert gateway.aftersales is not None
    request = await gateway.aftersales.get(request_id)
    assert request is not None
    return request


async def _has(mapping: dict[str, object], key: str) -> bool:
    return key in mapping
