"""Agents act on orders from the console: intercept, redirect, cancel and refund, resend,
compensate, approve a return with a pick-up — through the services the bot uses, with both
timelines, the role checks, the audit entry, the customer told on their channel, and the
downstream systems taking it from there. A ticket an agent submits about money or goods is
decided on an after-sales request."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp.test_utils import TestClient

from backoffice.permissions import Role
from gateway import Gateway
from nlu import NluClient
from shop.aftersales import RequestType, Step
from store.mongo import ConversationStore
from tests.downstream_support import loop_gateway, standins
from tests.helpers import wait_for
from tests.selfservice import Customer

API = "/api/backoffice"


async def staff(gateway: Gateway, staff_id: str, *roles: Role, skills: tuple[str, ...] = ()) -> dict[str, str]:
    assert gateway.backoffice is not None
    _, token = await gateway.backoffice.staff.create(staff_id, name=staff_id, roles=list(roles),
                                                     skill_groups=list(skills))  # fmt: skip
    return {"Authorization": f"Bearer {token}"}


async def act(
    http: TestClient[object, object], path: str, who: dict[str, str], body: dict[str, Any] | None = None, *,
    expect: int = 201,
) -> dict[str, Any]:  # fmt: skip
    response = await (http.post(path, json=body, headers=who) if body is not None else http.get(path, headers=who))
    answer = await response.json()
    assert response.status == expect, answer
    return dict(answer)


async def texts(store: ConversationStore, conversation_id: str | None) -> list[str]:
    return [
        d["text"] async for d in store.db["messages"].find({"direction": "out", "conversation_id": conversation_id})
    ]


async def audit_actions(store: ConversationStore, order_id: str) -> list[str]:
    cursor = store.db["ledger"].find(
        {"chain": "audit", "record.kind": "order_action", "record.subject": f"order:{order_id}"}
    )
    return [d["record"]["data"]["action"] async for d in cursor]


async def test_an_agent_intercepts_a_parcel_and_the_refund_follows_the_warehouse(
    tmp_path: Path, store: ConversationStore, nlu: NluClient
) -> None:
    async with loop_gateway(tmp_path, store, nlu) as (gateway, http):
        payment, warehouse, _ = standins(gateway)
        customer = Customer(http, gateway)
        order = await customer.order("shipped")
        await customer.say("你好")
        front = await staff(gateway, "liu", Role.CUSTOMER_SERVICE)
        body = {"reason": "客户不想要了，派送前拦截", "customer_id": await customer.customer_id()}
        view = await act(http, f"{API}/orders/{order.order_id}", front, expect=200)
        assert view["actions"] == ["intercept", "redirect", "resend", "compensate"]
        done = await act(http, f"{API}/orders/{order.order_id}/intercept", front, body)
        request = done["request"]
        assert request["type"] == "refund" and request["status"] == "approved" and request["decided_by"] == "staff:liu"
        assert [s["actor"] for s in request["agent_timeline"]] == ["staff:liu", "staff:liu"]
        assert await audit_actions(store, order.order_id) == ["intercept"]
        await wait_for(lambda: _has(warehouse.orders["intercepts"], request["id"]))
        assert (await warehouse.intercept_result(request["id"], "intercepted")).status == 200
        await wait_for(lambda: _has(payment.refunds, request["id"]))
        assert (await payment.settle(request["id"])).status == 200
        assert gateway.aftersales is not None
        final = await gateway.aftersales.get(request["id"])
        assert final is not None and final.status is Step.COMPLETED
        assert [s.label for s in final.customer_timeline("zh")] == ["退款审核中", "退款中", "退款成功"]
        told = await texts(store, final.conversation_id)
        assert any("客服已为您申请拦截" in t for t in told) and any("已拦截退回" in t for t in told)
        assert any(t.startswith("退款成功") for t in told)
        # The same order again: one problem, one request.
        again = await act(http, f"{API}/orders/{order.order_id}/intercept", front, body, expect=409)
        assert again["error"]["code"] == "invalid_action" and request["id"] in again["error"]["message"]


async def test_cancel_resend_compensate_and_approve_a_return_with_the_role_checks(
    tmp_path: Path, store: ConversationStore, nlu: NluClient
) -> None:
    async with loop_gateway(tmp_path, store, nlu) as (gateway, http):
        payment, warehouse, courier = standins(gateway)
        customer = Customer(http, gateway)
        unshipped = await customer.order("paid")
        delivered = await customer.order("delivered", delivered_days_ago=2)
        late = await customer.order("delivered", delivered_days_ago=20, paid_days_ago=25)
        await customer.say("你好")
        who = {"customer_id": await customer.customer_id()}
        front = await staff(gateway, "liu", Role.CUSTOMER_SERVICE)
        reviewer = await staff(gateway, "chen", Role.REVIEWER, skills=("returns",))
        quality = await staff(gateway, "sun", Role.QUALITY)

        refused = await act(http, f"{API}/orders/{unshipped.order_id}/cancel-refund", quality,
                            {"reason": "x", **who}, expect=403)  # fmt: skip
        assert refused["error"]["code"] == "forbidden"
        cancelled = (await act(http, f"{API}/orders/{unshipped.order_id}/cancel-refund", front,
                               {"reason": "客户电话要求取消", **who}))["request"]  # fmt: skip
        assert cancelled["status"] == "payment_processing" and cancelled["amount"] == 89.0
        assert (await customer.fresh(unshipped)).status.value == "cancelled"
        await wait_for(lambda: _has(payment.refunds, cancelled["id"]))

        sku = delivered.items[0].sku
        over = {"sku": sku, "quantity": 1, "reason": "少件", **who}  # ¥89 is over the ¥50 automatic limit
        refused = await act(http, f"{API}/orders/{delivered.order_id}/resend", front, over, expect=403)
        assert refused["error"]["code"] == "forbidden"
        resend = (await act(http, f"{API}/orders/{delivered.order_id}/resend", reviewer, over))["request"]
        assert resend["status"] == "resending" and resend["decided_by"] == "staff:chen"
        await wait_for(lambda: _has(warehouse.orders["outbounds"], resend["id"]))
        shipped = await warehouse.shipped(resend["id"])
        assert shipped.status == 200
        assert gateway.aftersales is not None
        resent = await gateway.aftersales.get(resend["id"])
        assert resent is not None and resent.details["tracking_number"].startswith("SF")
        assert any(
            f"运单号 {resent.details['tracking_number']}" in t for t in await texts(store, resent.conversation_id)
        )

        credit = {"amount": 5, "form": "store_credit", "reason": "配送延迟", **who}
        compensated = (await act(http, f"{API}/orders/{delivered.order_id}/compensate", front, credit))["request"]
        assert compensated["type"] == "compensation" and compensated["status"] == "completed"
        big = {"amount": 50, "form": "refund", "reason": "商品有瑕疵", **who}
        assert (await act(http, f"{API}/orders/{late.order_id}/compensate", front, big, expect=403))["error"][
            "code"
        ] == "forbidden"

        tomorrow = (datetime.now(ZoneInfo("Asia/Shanghai")).date() + timedelta(days=1)).isoformat()
        pickup = {"sku": sku, "date": tomorrow, "slot": "14:00-18:00", "reason": "客户电话申请七天无理由", **who}
        approved = (await act(http, f"{API}/orders/{delivered.order_id}/approve-return", front, pickup))["request"]
        assert approved["type"] == "return_refund" and approved["status"] == "awaiting_return"
        assert approved["details"]["return_code"].startswith("RT")
        await wait_for(lambda: _has(courier.bookings, approved["id"]))
        assert gateway.pickups is not None
        booked = await gateway.pickups.get(approved["id"])
        assert booked is not None and booked.window_start == "14:00" and booked.date == tomorrow
        outside = {**pickup, "sku": late.items[0].sku}
        assert (await act(http, f"{API}/orders/{late.order_id}/approve-return", front, outside, expect=403))["error"][
            "code"
        ] == "forbidden"
        assert (await act(http, f"{API}/orders/{late.order_id}/approve-return", reviewer, outside))["request"]

        stranger = Customer(http, gateway)
        await stranger.say("你好")
        theirs = {"reason": "x", "customer_id": await stranger.customer_id()}
        wrong = await act(http, f"{API}/orders/{delivered.order_id}/compensate", front,
                          {**theirs, "amount": 1, "form": "store_credit"}, expect=409)  # fmt: skip
        assert "not this customer's" in wrong["error"]["message"]
        assert (await act(http, f"{API}/orders/209901010001/intercept", front, theirs, expect=404))["error"][
            "code"
        ] == "not_found"

        assert sorted(await audit_actions(store, delivered.order_id)) == ["approve_return", "compensate", "resend"]
        view = await act(http, f"{API}/orders/{delivered.order_id}", front, expect=200)
        kinds = {r["type"]: r for r in view["requests"]}
        assert set(kinds) == {"resend", "compensation", "return_refund"}
        assert kinds["return_refund"]["customer_timeline"][-1]["label"] == "待退货"
        assert [p["pickup_id"] for p in view["pickups"]] == [approved["id"]]


async def test_a_money_ticket_an_agent_submits_is_decided_on_an_after_sales_request(
    tmp_path: Path, store: ConversationStore, nlu: NluClient
) -> None:
    async with loop_gateway(tmp_path, store, nlu) as (gateway, http):
        payment, _, _ = standins(gateway)
        customer = Customer(http, gateway)
        order = await customer.order("delivered", delivered_days_ago=3)
        await customer.say("你好")
        front = await staff(gateway, "liu", Role.CUSTOMER_SERVICE)
        body = {"customer_id": await customer.customer_id(), "summary": "客户来电：杯盖有划痕，要求部分退款 20 元",
                "type": "refund", "order_id": order.order_id, "amount": 20}  # fmt: skip
        ticket = (await act(http, f"{API}/tickets", front, body))["ticket"]
        assert ticket["request_id"]
        assert gateway.aftersales is not None
        request = await gateway.aftersales.get(ticket["request_id"])
        assert request is not None and request.type is RequestType.REFUND and request.status is Step.REVIEWING
        assert request.amount == 20.0 and request.ticket_id == ticket["id"] and request.timeline[0].actor == "staff:liu"
        reviewer = await staff(gateway, "chen", Role.REVIEWER, skills=(ticket["queue"],))
        base = f"{API}/tickets/{ticket['id']}"
        await act(http, f"{base}/claim", reviewer, {}, expect=200)
        await act(http, f"{base}/transition", reviewer, {"to": "in_review"}, expect=200)
        await act(http, f"{base}/transition", reviewer, {"to": "approved", "reason": "照片属实"}, expect=200)
        await wait_for(lambda: _has(payment.refunds, request.id))
        assert payment.refunds[request.id]["refund"] == 2000
        assert (await payment.settle(request.id)).status == 200
        request = await gateway.aftersales.get(request.id)
        assert request is not None and request.status is Step.COMPLETED


async def _has(mapping: dict[str, object], key: str) -> bool:
    return key in mapping
