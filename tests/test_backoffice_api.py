"""The backoffice HTTP API on an in-process gateway with the real NLU: a self-service hand-over
that a reviewer takes, decides and closes, the customer hearing of it on their channel and
answering the survey in chat; role and queue permissions enforced on every route; admin
configuration and staff; the OpenAPI document; and ``run.py audit verify``."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from backoffice.permissions import Role
from gateway import Gateway
from shop.aftersales import Step
from store.embedded import EmbeddedMongo
from tests.conftest import REPO_ROOT
from tests.selfservice import Customer

API = "/api/backoffice"


async def make_staff(gateway: Gateway, staff_id: str, *roles: Role, skills: tuple[str, ...] = ()) -> dict[str, str]:
    assert gateway.backoffice is not None
    _, token = await gateway.backoffice.staff.create(
        staff_id, name=staff_id, roles=list(roles), skill_groups=list(skills), online=False
    )
    return {"Authorization": f"Bearer {token}"}


async def call(
    http: TestClient[object, object], method: str, path: str, headers: dict[str, str], body: Any = None,
    expect: int = 200,
) -> dict[str, Any]:  # fmt: skip
    response = await http.request(method, f"{API}{path}", headers=headers, json=body)
    data = await response.json()
    assert response.status == expect, data
    return data  # type: ignore[no-any-return]


async def test_staff_sign_in_with_a_token(client: TestClient[object, object], gateway: Gateway) -> None:
    assert (await client.get(f"{API}/me")).status == 401
    bad = await client.get(f"{API}/me", headers={"Authorization": "Bearer nope"})
    assert bad.status == 401 and (await bad.json())["error"]["code"] == "unauthorized"
    headers = await make_staff(gateway, "li", Role.REVIEWER, skills=("logistics",))
    me = await call(client, "GET", "/me", headers)
    assert me["staff"]["id"] == "li" and "review" in me["staff"]["permissions"]
    assert "token_hashes" not in me["staff"]
    online = await call(client, "PATCH", "/me", headers, {"online": True})
    assert online["staff"]["online"] is True
    await call(client, "PATCH", "/me", headers, {"roles": ["admin"]}, expect=400)  # not one's own to change


async def test_a_handed_over_refund_is_claimed_decided_and_closed_and_the_customer_answers_the_survey(
    client: TestClient[object, object], gateway: Gateway
) -> None:
    finance = await make_staff(gateway, "zhao", Role.REVIEWER, skills=("finance",))
    customer = Customer(client, gateway)
    await customer.order("delivered", delivered_days_ago=2)
    await customer.say("我要退款")
    await customer.say("部分退款")
    await customer.say("退30元吧，说好的优惠没给")
    submitted = await customer.say("确认")
    assert "已提交审核" in submitted
    (request,) = await customer.requests()

    pool = await call(client, "GET", "/pool", finance)
    (queue,) = pool["queues"]
    assert queue["queue"] == "finance" and queue["count"] == 1 and queue["oldest_age"]["text"] == "刚刚"
    (listed,) = (await call(client, "GET", "/tickets?view=pool", finance))["tickets"]
    assert listed["id"] == request.ticket_id and listed["status_label"] == "待领取"
    ticket_id = listed["id"]
    full = (await call(client, "GET", f"/tickets/{ticket_id}", finance))["ticket"]
    assert full["request"]["id"] == request.id and full["request"]["status"] == "reviewing"
    assert full["classification"]["cues"] and full["effective_priority"]["factors"][0]["factor"] == "type"
    assert [c["clock"] for c in full["sla_clocks"]] == ["first_response", "resolution"]

    await call(client, "POST", f"/tickets/{ticket_id}/claim", finance, {})
    await call(client, "POST", f"/tickets/{ticket_id}/transition", finance, {"to": "in_review"})
    await call(client, "POST", f"/tickets/{ticket_id}/transition", finance, {"to": "rejected"}, expect=400)
    decided = await call(
        client, "POST", f"/tickets/{ticket_id}/transition", finance, {"to": "approved", "reason": "划痕属实"}
    )
    assert decided["ticket"]["status"] == "processing"  # money moving: the request went to the payment centre
    (moved,) = await customer.requests()
    assert [e.step for e in moved.timeline][-2:] == [Step.APPROVED, Step.PAYMENT_PROCESSING]
    assert moved.decided_by == "staff:zhao"
    progress = await customer.say("帮我查一下订单")
    assert "退款中" in progress

    await call(client, "POST", f"/tickets/{ticket_id}/transition", finance, {"to": "resolved", "note": "退款已到账"})
    closed = await call(client, "POST", f"/tickets/{ticket_id}/transition", finance, {"to": "closed"})
    assert [e["label"] for e in closed["ticket"]["customer_timeline"]] == [
        "已提交", "专员已受理", "审核中", "审核通过", "处理中", "已解决", "已完结"
    ]  # fmt: skip

    store = gateway.store
    assert store is not None
    outbound = [m.text for m in await store.history(request.conversation_id or "", limit=100) if m.author != "bot"]
    assert any("已审核通过" in t for t in outbound) and "1-5分" in outbound[-1]
    assert "0-10" in await customer.say("5分，处理很快")
    assert "感谢您的评价" in await customer.say("9")
    assert gateway.backoffice is not None
    survey = await gateway.backoffice.surveys.for_ticket(ticket_id)
    assert survey is not None and (survey.csat, survey.nps, survey.stage) == (5, 9, "done")
    assert survey.comment == "处理很快" and survey.agent == "zhao"
    conversation = await store.get_conversation(request.conversation_id or "")
    assert conversation is not None and set(conversation.awaiting["surveys"]) == {survey.id}
    assert "订单" in await customer.say("查订单")  # the survey is over: ordinary turns again
    conversation = await store.get_conversation(request.conversation_id or "")
    assert conversation is not None and conversation.awaiting["surveys"] == {}  # its flag cleared by that turn

    audit = await call(client, "GET", f"/tickets/{ticket_id}/audit", finance)
    assert {e["subject"] for e in audit["entries"]} == {f"ticket:{ticket_id}", f"request:{request.id}"}


async def test_waiting_for_the_customer_pauses_the_ticket_until_they_answer_in_chat(
    client: TestClient[object, object], gateway: Gateway
) -> None:
    product = await make_staff(gateway, "wang", Role.REVIEWER, skills=("product",))
    customer = Customer(client, gateway)
    await customer.order("delivered", delivered_days_ago=20)
    await customer.say("我要退货")
    await customer.say("质量问题，杯子漏水")
    await customer.say("没有照片")
    await customer.say("明天上午")
    replies = await customer.say("确认")
    (request,) = await customer.requests()
    assert request.ticket_id, replies
    ticket_id = request.ticket_id
    await call(client, "POST", f"/tickets/{ticket_id}/claim", product, {})
    await call(client, "POST", f"/tickets/{ticket_id}/transition", product, {"to": "in_review"})
    await call(client, "POST", f"/tickets/{ticket_id}/transition", product, {"to": "pending_customer"}, expect=400)
    waiting = await call(
        client, "POST", f"/tickets/{ticket_id}/transition", product,
        {"to": "pending_customer", "note": "请拍一张漏水位置的照片"},
    )  # fmt: skip
    assert any(c["state"] == "paused" for c in waiting["ticket"]["sla_clocks"])
    await customer.say("好的我晚点拍")
    back = (await call(client, "GET", f"/tickets/{ticket_id}", product))["ticket"]
    assert back["status"] == "in_review" and back["timeline"][-1]["actor"] == "customer"


async def test_roles_and_queues_are_enforced_on_every_route(
    client: TestClient[object, object], gateway: Gateway
) -> None:
    logistics = await make_staff(gateway, "li", Role.REVIEWER, skills=("logistics",))
    finance = await make_staff(gateway, "zhao", Role.REVIEWER, skills=("finance",))
    dispatcher = await make_staff(gateway, "zhou", Role.DISPATCHER)
    front = await make_staff(gateway, "liu", Role.CUSTOMER_SERVICE)
    admin = await make_staff(gateway, "root", Role.ADMIN)
    customer = Customer(client, gateway)
    await customer.say("你好")
    customer_id = await customer.customer_id()
    submitted = await call(
        client, "POST", "/tickets", front,
        {"customer_id": customer_id, "summary": "客户反映发票抬头开错了，需要重开", "order_id": "202611150001"},
        expect=201,
    )  # fmt: skip
    ticket = submitted["ticket"]
    assert ticket["type"] == "invoice" and ticket["queue"] == "finance" and ticket["submitted_by"] == "liu"
    await call(client, "POST", "/tickets", finance, {"customer_id": customer_id, "summary": "x"}, expect=403)
    await call(client, "POST", "/tickets", front, {"customer_id": "nobody", "summary": "x"}, expect=400)
    await call(client, "POST", "/tickets", front, {"customer_id": customer_id, "summary": ""}, expect=400)
    # Made-up photo and reading ids are not evidence (an automatic rule could approve on them).
    for forged in ({"evidence": ["f" * 64]}, {"evidence": ["sha256-photo"]}, {"ocr_result_ids": ["nope"]}):
        body = {"customer_id": customer_id, "summary": "包装破了 要赔偿", "amount": 20, "reason": "破损", **forged}
        refused = await call(client, "POST", "/tickets", front, body, expect=400)
        assert refused["error"]["details"]["field"] in {"evidence", "ocr_result_ids"}
    tid = ticket["id"]

    await call(client, "GET", f"/tickets/{tid}", logistics, expect=403)  # another queue's ticket
    await call(client, "POST", f"/tickets/{tid}/claim", logistics, {}, expect=403)
    await call(client, "GET", "/tickets?view=all", logistics, expect=403)
    await call(client, "GET", "/tickets?view=pool&queue=finance", logistics, expect=403)
    assert (await call(client, "GET", "/tickets?view=pool", logistics))["count"] == 0
    assert (await call(client, "GET", "/tickets?view=submitted", front))["count"] == 1
    for path in ("/config/sla", "/config/rules", "/audit/verify"):
        await call(client, "GET", path, logistics, expect=403)
        await call(client, "GET", path, dispatcher, expect=403)
    await call(client, "POST", "/staff", finance, {"id": "x", "name": "x", "roles": ["admin"]}, expect=403)
    await call(client, "POST", f"/tickets/{tid}/assign", finance, {"assignee": "zhao"}, expect=403)
    await call(client, "POST", f"/tickets/{tid}/transfer", finance, {"queue": "logistics", "reason": "x"}, expect=403)
    await call(client, "POST", f"/tickets/{tid}/transition", dispatcher, {"to": "approved"}, expect=403)
    await call(client, "POST", f"/tickets/{tid}/transition", admin, {"to": "in_review"}, expect=403)

    await call(client, "POST", f"/tickets/{tid}/assign", dispatcher, {"assignee": "li"}, expect=400)  # wrong queue
    assigned = await call(client, "POST", f"/tickets/{tid}/assign", dispatcher, {"assignee": "zhao"})
    assert assigned["ticket"]["assignee"] == "zhao" and assigned["ticket"]["status"] == "assigned"
    await call(client, "POST", f"/tickets/{tid}/transition", finance, {"to": "in_review"})
    await call(client, "POST", f"/tickets/{tid}/claim", dispatcher, {}, expect=409)
    moved = await call(client, "POST", f"/tickets/{tid}/transfer", dispatcher,
                       {"queue": "logistics", "assignee": "li", "reason": "物流组处理"})  # fmt: skip
    assert moved["ticket"]["queue"] == "logistics" and moved["ticket"]["assignee"] == "li"
    await call(client, "GET", f"/tickets/{tid}", finance, expect=403)  # no longer in zhao's queues
    assert (await call(client, "GET", f"/tickets/{tid}", logistics))["ticket"]["id"] == tid
    await call(client, "POST", f"/tickets/{tid}/transition", logistics, {"to": "flying"}, expect=400)
    await call(client, "POST", f"/tickets/{tid}/transition", logistics, {"to": "processing"}, expect=409)
    await call(client, "GET", "/tickets/T0000", logistics, expect=404)
    alerts = await call(client, "GET", "/alerts", logistics)
    assert any(a["kind"] == "assigned" and a["ticket_id"] == tid for a in alerts["alerts"])
    alert_id = alerts["alerts"][0]["id"]
    await call(client, "POST", f"/alerts/{alert_id}/read", logistics, {})
    assert all(a["id"] != alert_id for a in (await call(client, "GET", "/alerts?unread=true", logistics))["alerts"])
    await call(client, "POST", f"/alerts/{alert_id}/read", front, {}, expect=404)


async def test_admins_configure_routing_and_staff_and_every_change_is_audited(
    client: TestClient[object, object], gateway: Gateway
) -> None:
    admin = await make_staff(gateway, "root", Role.ADMIN)
    front = await make_staff(gateway, "liu", Role.CUSTOMER_SERVICE)
    current = await call(client, "GET", "/config/tickets", admin)
    assert current["version"] == 0 and "logistics" in current["document"]["queues"]
    document = current["document"]
    bad = dict(document, routing={**document["routing"], "default_queue": "nowhere"})
    refused = await call(client, "PUT", "/config/tickets", admin, {"document": bad}, expect=400)
    error = refused["error"]
    assert error["code"] == "invalid_config" and any("default_queue" in p for p in error["details"]["problems"])
    by_category = {**document["routing"]["by_category"], "invoice_issue": "general"}
    changed = dict(document, routing={**document["routing"], "by_category": by_category})
    saved = await call(client, "PUT", "/config/tickets", admin, {"document": changed, "expected_version": 0})
    assert saved["version"] == 1
    await call(client, "PUT", "/config/tickets", admin, {"document": changed, "expected_version": 0}, expect=409)
    sla = await call(client, "GET", "/config/sla", admin)
    sla["document"]["business_hours"]["days"]["sun"] = "25:00-26:00"
    await call(client, "PUT", "/config/sla", admin, {"document": sla["document"]}, expect=400)
    await call(client, "GET", "/config/colours", admin, expect=404)

    assert gateway.backoffice is not None
    gateway.backoffice.config._cache.clear()  # other processes see the change within seconds; this one now
    customer = Customer(client, gateway)
    await customer.say("你好")
    ticket = await call(
        client, "POST", "/tickets", front,
        {"customer_id": await customer.customer_id(), "summary": "要开发票", "type": "invoice"}, expect=201,
    )  # fmt: skip
    assert ticket["ticket"]["queue"] == "general"

    created = await call(client, "POST", "/staff", admin,
                         {"id": "new.agent", "name": "新人", "roles": ["reviewer"], "skill_groups": ["finance"]},
                         expect=201)  # fmt: skip
    token = created["token"]
    await call(client, "POST", "/staff", admin, {"id": "new.agent", "name": "again", "roles": ["reviewer"]}, expect=409)
    await call(client, "POST", "/staff", admin, {"id": "x2", "name": "x", "roles": ["reviewer"],
                                                  "skill_groups": ["moon"]}, expect=400)  # fmt: skip
    mine = await call(client, "GET", "/me", {"Authorization": f"Bearer {token}"})
    assert mine["staff"]["skill_groups"] == ["finance"]
    await call(client, "PATCH", "/staff/new.agent", admin, {"disabled": True})
    await call(client, "GET", "/me", {"Authorization": f"Bearer {token}"}, expect=401)
    listing = await call(client, "GET", "/staff", admin)
    assert {s["id"] for s in listing["staff"]} >= {"root", "liu", "new.agent"}

    kinds = {e.record["kind"] for e in await gateway.backoffice.audit.ledger.entries()}
    assert {"config_changed", "staff_created", "staff_changed", "ticket_opened"} <= kinds
    verified = await call(client, "GET", "/audit/verify", admin)
    assert verified["ok"] is True and verified["entries"] >= 4


async def test_the_openapi_document_describes_every_backoffice_route(client: TestClient[object, object]) -> None:
    response = await client.get("/api/openapi.json")
    assert response.status == 200
    document = await response.json()
    assert document["openapi"].startswith("3.1")
    paths = document["paths"]
    assert {"get", "post"} <= set(paths[f"{API}/tickets"])
    assert "post" in paths[f"{API}/tickets/{{ticket_id}}/transition"]
    body = paths[f"{API}/tickets/{{ticket_id}}/transition"]["post"]["requestBody"]["content"]["application/json"]
    schemas = document["components"]["schemas"]
    move = schemas[body["schema"]["$ref"].rsplit("/", 1)[1]]
    assert "to" in move["required"]

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if "$ref" in node else []
            return found + [r for value in node.values() for r in refs(value)]
        if isinstance(node, list):
            return [r for value in node for r in refs(value)]
        return []

    for ref in refs(document):
        assert ref.rsplit("/", 1)[1] in schemas, f"dangling {ref}"
    operation_ids = [op["operationId"] for methods in paths.values() for op in methods.values()]
    assert len(operation_ids) == len(set(operation_ids))


@pytest.mark.timeout(120)
async def test_the_audit_verify_command_passes_a_clean_log_and_fails_a_tampered_one(
    client: TestClient[object, object], gateway: Gateway, mongo: EmbeddedMongo
) -> None:
    admin = await make_staff(gateway, "root", Role.ADMIN)
    customer = Customer(client, gateway)
    await customer.say("我要投诉，快递员把包裹扔在门口")
    await customer.say("快递员态度很差，东西直接扔门口不打电话")
    assert gateway.store is not None
    env = {**os.environ, "MONGODB_URI": mongo.uri, "MONGODB_DATABASE": gateway.store.db.name}

    def verify() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(REPO_ROOT / "run.py"), "audit", "verify"],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    clean = await asyncio.to_thread(verify)
    assert clean.returncode == 0 and "OK" in clean.stdout, clean.stdout + clean.stderr
    entries = (await call(client, "GET", "/audit/verify", admin))["entries"]
    assert entries >= 1
    await gateway.store.db["ledger"].update_one(
        {"chain": "audit", "seq": 1}, {"$set": {"record.data.note": "edited afterwards"}}
    )
    tampered = await asyncio.to_thread(verify)
    assert tampered.returncode == 1 and "entry 1 was changed" in tampered.stdout


async def test_a_reviewer_coming_online_gets_the_waiting_tickets_of_their_queue(
    client: TestClient[object, object], gateway: Gateway
) -> None:
    logistics = await make_staff(gateway, "li", Role.REVIEWER, skills=("logistics",))
    front = await make_staff(gateway, "liu", Role.CUSTOMER_SERVICE)
    customer = Customer(client, gateway)
    await customer.say("你好")
    body = {"customer_id": await customer.customer_id(), "summary": "少发了一件，订单写两件只到一件", "amount": 300}
    waiting = (await call(client, "POST", "/tickets", front, body, expect=201))["ticket"]
    assert waiting["queue"] == "logistics" and waiting["status"] == "new"  # nobody online yet
    await call(client, "PATCH", "/me", logistics, {"online": True})
    mine = await call(client, "GET", "/tickets?view=mine", logistics)
    assert [t["id"] for t in mine["tickets"]] == [waiting["id"]] and mine["tickets"][0]["status"] == "assigned"


async def test_a_duplicate_submission_reveals_and_changes_nothing_the_submitter_may_not(
    client: TestClient[object, object], gateway: Gateway
) -> None:
    """Security finding 4: submitting the same problem again returned someone else's ticket in
    full (internal notes included) and changed it in the customer's name."""
    finance = await make_staff(gateway, "zhao", Role.REVIEWER, skills=("finance",))
    front = await make_staff(gateway, "liu", Role.CUSTOMER_SERVICE)
    other_front = await make_staff(gateway, "wu", Role.CUSTOMER_SERVICE)
    customer = Customer(client, gateway)
    await customer.say("你好")
    body = {
        "customer_id": await customer.customer_id(),
        "summary": "发票抬头开错了，需要重开",
        "order_id": "202611150001",
    }
    first = (await call(client, "POST", "/tickets", front, body, expect=201))["ticket"]
    tid = first["id"]
    await call(client, "POST", f"/tickets/{tid}/claim", finance, {})
    await call(client, "POST", f"/tickets/{tid}/comments", finance, {"text": "内部：客户有恶意退款记录"}, expect=201)
    before = (await call(client, "GET", f"/tickets/{tid}", finance))["ticket"]

    again = await call(
        client, "POST", "/tickets", other_front, {**body, "summary": "发票抬头开错了，客户又来催重开"}, expect=200
    )
    assert again["created"] is False
    assert again["ticket"] == {"id": tid, "type": "invoice", "status": before["status"], "visible": False}
    assert "恶意" not in str(again)
    after = (await call(client, "GET", f"/tickets/{tid}", finance))["ticket"]
    assert after["status"] == before["status"]  # nothing reopened or moved in anyone else's name
    assert after["timeline"][-1]["actor"] != "customer"
    assert "wu" in after["timeline"][-1]["actor"]


async def test_api_tokens_expire_can_be_revoked_and_end_with_a_password_change(
    client: TestClient[object, object], gateway: Gateway
) -> None:
    """Security (low): API tokens never expired, could not be revoked and survived a password change."""
    from backoffice import staff as staff_module

    admin = await make_staff(gateway, "root", Role.ADMIN)
    agent = await make_staff(gateway, "li", Role.REVIEWER, skills=("finance",))
    await call(client, "GET", "/me", agent)
    # revoked by an admin (a leaked token), audited
    ended = await call(client, "DELETE", "/staff/li/tokens", admin)
    assert ended["tokens_ended"] == 1
    await call(client, "GET", "/me", agent, expect=401)
    fresh = {"Authorization": f"Bearer {(await call(client, 'POST', '/staff/li/tokens', admin, expect=201))['token']}"}
    await call(client, "GET", "/me", fresh)
    # a password change ends them (setting the first password does not)
    assert gateway.backoffice is not None
    await gateway.backoffice.staff.set_password("li", "Tea-and-Biscuits-2026")
    await call(client, "GET", "/me", fresh)
    await gateway.backoffice.staff.set_password("li", "Another-Long-Phrase-77")
    await call(client, "GET", "/me", fresh, expect=401)
    # and they expire
    later = {"Authorization": f"Bearer {(await call(client, 'POST', '/staff/li/tokens', admin, expect=201))['token']}"}
    await call(client, "GET", "/me", later)
    original = staff_module.TOKEN_LIFETIME
    try:
        staff_module.TOKEN_LIFETIME = -original  # issued "after" its end
        expired = {
            "Authorization": f"Bearer {(await call(client, 'POST', '/staff/li/tokens', admin, expect=201))['token']}"
        }
    finally:
        staff_module.TOKEN_LIFETIME = original
    await call(client, "GET", "/me", expired, expect=401)
    kinds = {e.record["kind"] for e in await gateway.backoffice.audit.ledger.entries()}
    assert "staff_tokens_revoked" in kinds
