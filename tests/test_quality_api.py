"""The quality API over HTTP: who may read and score, parameter checks (400 naming the field),
CSV exports with a BOM for Excel, and scoring through a console session with its CSRF token."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from aiohttp import ClientSession

from backoffice.permissions import Role
from gateway import Gateway
from shop.aftersales import RequestType
from store import Event
from tests.console_support import make_staff, served, signed_in_client


async def test_only_quality_viewers_read_and_only_quality_staff_score(gateway: Gateway) -> None:
    async with served(gateway) as site:
        await make_staff(gateway, "li.cs", Role.CUSTOMER_SERVICE)
        await make_staff(gateway, "wang.rev", Role.REVIEWER)
        await make_staff(gateway, "zhao.disp", Role.DISPATCHER)
        await make_staff(gateway, "qa.chen", Role.QUALITY)
        for staff_id in ("li.cs", "wang.rev"):
            async with signed_in_client(site, staff_id) as client:
                for path in ("/api/console/quality/summary", "/api/console/quality/export.csv",
                             "/api/console/refunds/report", "/api/console/reviews/queue"):  # fmt: skip
                    response = await client.http.get(path)
                    assert response.status == 403, (staff_id, path)
                    assert (await response.json())["error"]["code"] == "forbidden"
                page = await client.http.get("/console/quality", allow_redirects=False)
                assert page.status == 403
        async with signed_in_client(site, "zhao.disp") as client:
            assert (await client.http.get("/api/console/quality/summary")).status == 200
            refused = await client.http.post(
                "/api/console/reviews", json={"item_id": "bot:x1", "verdict": "good"}, headers=client.headers()
            )
            assert refused.status == 403
        async with signed_in_client(site, "qa.chen", landing="/console/quality") as client:
            summary = await client.http.get("/api/console/quality/summary?lang=en")
            assert summary.status == 200
            body = await summary.json()
            names = [m["name"] for m in body["metrics"]]
            assert names[:3] == ["self_service_completion", "transfer_to_human", "ivr_interception"]
            assert body["metrics"][0]["definition"].startswith("Conversations with a self_service_completed")
            assert set(body["groups"]) == {"channel", "intent", "day", "hour", "agent"}
            assert len(body["groups"]["day"]) == 30  # the default range: the last 30 days
        async with ClientSession(site.base) as anonymous:
            assert (await anonymous.get("/api/console/quality/summary")).status == 401


async def test_every_query_parameter_is_checked(gateway: Gateway) -> None:
    async with served(gateway) as site:
        await make_staff(gateway, "qa.chen", Role.QUALITY)
        async with signed_in_client(site, "qa.chen", landing="/console/quality") as client:
            cases = {
                "/api/console/quality/summary?from=2026-13-01": "from",
                "/api/console/quality/summary?from=2026-11-30&to=2026-11-01": "from",
                "/api/console/quality/summary?from=2025-01-01&to=2026-11-30": "to",
                "/api/console/quality/summary?channel=Web%20Chat": "channel",
                "/api/console/quality/summary?agent=%3Cscript%3E": "agent",
                "/api/console/quality/summary?lang=fr": "lang",
                "/api/console/quality/conversations": "metric",
                "/api/console/quality/conversations?metric=csat&group=week&key=x": "group",
                "/api/console/quality/conversations?metric=csat&group=day": "key",
                "/api/console/refunds/report?granularity=month": "granularity",
                "/api/console/reviews/queue?kind=tickets": "kind",
                "/api/console/reviews/queue?limit=500": "limit",
            }
            for path, field in cases.items():
                response = await client.http.get(path)
                assert response.status == 400, path
                assert (await response.json())["error"]["details"]["field"] == field, path
            whole_year = await client.http.get("/api/console/quality/summary?from=2025-12-01&to=2026-11-30")
            assert whole_year.status == 200  # 365 days is allowed


async def test_csv_exports_start_with_a_bom_and_a_header(gateway: Gateway) -> None:
    async with served(gateway) as site:
        await make_staff(gateway, "qa.chen", Role.QUALITY)
        assert gateway.store is not None
        now = datetime.now(UTC) - timedelta(minutes=5)
        for name in ("nlu_parsed", "self_service_completed"):
            await gateway.store.log_event(
                Event(name=name, conversation_id="cv1", channel="rest", data={"intent": "refund"}, at=now)
            )
        async with signed_in_client(site, "qa.chen", landing="/console/quality") as client:
            response = await client.http.get("/api/console/quality/export.csv?lang=zh")
            assert response.status == 200 and response.content_type == "text/csv"
            raw = await response.read()
            assert raw.startswith("\ufeff".encode())
            rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
            assert rows[0][:7] == ["dimension", "key", "metric", "label", "numerator", "denominator", "value"]
            overall = next(r for r in rows if r[0] == "all" and r[2] == "self_service_completion")
            assert overall[3] == "自助完成率" and overall[4:7] == ["1", "1", "1.0"]
            assert any(r[0] == "channel" and r[1] == "rest" for r in rows)
            assert gateway.aftersales is not None  # a customer's reason that a spreadsheet would run
            await gateway.aftersales.create(
                type=RequestType.REFUND, order_id="202611150001", customer_id="cu1", actor="customer",
                amount=10.0, reason='=HYPERLINK("http://evil.example","点我")',
            )  # fmt: skip
            refunds = await client.http.get("/api/console/refunds/export.csv?granularity=week")
            text = (await refunds.read()).decode("utf-8")
            assert text.startswith("\ufeffsection,key,count,amount")
            assert "attachment" in refunds.headers["Content-Disposition"]
            cells = [c for row in csv.reader(io.StringIO(text.lstrip("\ufeff"))) for c in row]
            assert '\'=HYPERLINK("http://evil.example","点我")' in cells  # shown as text, never run
            assert not any(c.startswith("=") for c in cells)


async def test_scoring_needs_the_csrf_token_and_a_real_item(gateway: Gateway) -> None:
    async with served(gateway) as site:
        await make_staff(gateway, "qa.chen", Role.QUALITY)
        store = gateway.store
        assert store is not None
        await store.messages.insert_one({
            "_id": "msg-q1", "conversation_id": "cv9", "customer_id": "cu9", "channel": "rest", "direction": "in",
            "text": "我要退款", "author": "customer", "created_at": datetime.now(UTC) - timedelta(hours=1),
            "understanding": {"intent": "refund", "confidence": 0.93},
        })  # fmt: skip
        async with signed_in_client(site, "qa.chen", landing="/console/quality") as client:
            no_csrf = await client.http.post("/api/console/reviews", json={"item_id": "bot:msg-q1", "verdict": "good"})
            assert no_csrf.status == 403
            queue = await (await client.http.get("/api/console/reviews/queue?kind=bot_answer")).json()
            assert [i["item_id"] for i in queue["items"]] == ["bot:msg-q1"]
            missing = await client.http.post(
                "/api/console/reviews", json={"item_id": "bot:nope", "verdict": "good"}, headers=client.headers()
            )
            assert missing.status == 400 and (await missing.json())["error"]["code"] == "invalid_review"
            wrong_kind = await client.http.post(
                "/api/console/reviews", json={"item_id": "bot:msg-q1", "verdict": "correct"}, headers=client.headers()
            )
            assert wrong_kind.status == 400
            scored = await client.http.post(
                "/api/console/reviews",
                json={"item_id": "bot:msg-q1", "verdict": "bad", "right_intent": "return_refund", "comment": "要退货"},
                headers=client.headers(),
            )
            assert scored.status == 201
            review = (await scored.json())["review"]
            assert (review["reviewer"], review["intent"], review["conversation_id"]) == ("qa.chen", "refund", "cv9")
            after = await (await client.http.get("/api/console/reviews/queue?kind=bot_answer")).json()
            assert after["items"] == [] and after["scored"] == 1
            summary = await (await client.http.get("/api/console/quality/summary")).json()
            good = next(m for m in summary["metrics"] if m["name"] == "bot_answer_good")
            assert (good["numerator"], good["denominator"]) == (0, 1)
        async with ClientSession(site.base) as anonymous:
            document = await (await anonymous.get("/api/openapi.json")).json()
        assert "/api/console/quality/summary" in document["paths"]
        assert "/api/backoffice/tickets" in document["paths"]  # one document for every staff route
