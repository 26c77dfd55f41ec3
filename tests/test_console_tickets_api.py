"""The ticket view's allowed_actions over HTTP (each one offered is then accepted), and the
password routes: an admin sets a password (weak ones refused, old sessions ended), a member
changes their own (the current one required, guessing throttled, this browser kept signed in)."""

from __future__ import annotations

from aiohttp import ClientSession

from backoffice.permissions import Role
from gateway import Gateway
from tests.console_support import PASSWORD, make_staff, served, signed_in_client
from tests.test_console_tickets_browser import product_ticket

API = "/api/backoffice"
NEW_PASSWORD = "Lantern-river-4412"


async def test_the_view_offers_what_the_api_then_accepts(gateway: Gateway) -> None:
    async with served(gateway) as site:
        ticket, _ = await product_ticket(site)
        await make_staff(gateway, "wang.product", Role.REVIEWER, name="王审核", skill_groups=["product"])
        await make_staff(gateway, "li.logistics", Role.REVIEWER, skill_groups=["logistics"])
        async with signed_in_client(site, "wang.product") as wang, signed_in_client(site, "li.logistics") as li:
            path = f"{API}/tickets/{ticket.id}"
            assert (await li.http.get(path)).status == 403
            claimed = await li.http.post(f"{path}/claim", headers=li.headers())
            assert claimed.status == 403

            view = (await (await wang.http.get(path)).json())["ticket"]
            assert view["allowed_actions"] == ["claim", "comment", "attach"]
            refused = await wang.http.post(f"{path}/transition", json={"to": "in_review"}, headers=wang.headers())
            assert refused.status == 403  # not offered, and not allowed
            for step, body in (("claim", None), ("transition", {"to": "in_review"})):
                response = await wang.http.post(f"{path}/{step}", json=body or {}, headers=wang.headers())
                assert response.status == 200, await response.text()
                view = (await response.json())["ticket"]
            assert view["status"] == "in_review" and view["actor_names"]["staff:wang.product"] == "王审核"
            assert {"approved", "rejected", "pending_customer"} <= set(view["allowed_actions"])
            assert "resolved" not in view["allowed_actions"]  # a compensation needs a decision first
            too_much = await wang.http.post(
                f"{path}/transition", json={"to": "approved", "amount": 100_000}, headers=wang.headers()
            )
            assert too_much.status == 400
            approved = await wang.http.post(
                f"{path}/transition", json={"to": "approved", "amount": 25}, headers=wang.headers()
            )
            view = (await approved.json())["ticket"]
            assert view["status"] == "approved" and view["version"] >= 4
            assert view["allowed_actions"] == ["processing", "resolved", "comment", "reply", "attach"]
            assert view["status_labels"]["approved"] == "审核通过"


async def test_an_admin_sets_a_password_and_the_members_sessions_end(gateway: Gateway) -> None:
    async with served(gateway) as site:
        await make_staff(gateway, "root", Role.ADMIN)
        await make_staff(gateway, "wang.product", Role.REVIEWER, skill_groups=["product"])
        async with signed_in_client(site, "root") as admin, signed_in_client(site, "wang.product") as wang:
            path = f"{API}/staff/wang.product/password"
            weak = await admin.http.post(path, json={"password": "abc"}, headers=admin.headers())
            assert weak.status == 400
            error = (await weak.json())["error"]
            assert error["code"] == "weak_password" and "10" in error["message"]
            assert error["details"]["field"] == "password"
            named = await admin.http.post(path, json={"password": "wang.product-2026"}, headers=admin.headers())
            assert named.status == 400 and "account name" in (await named.json())["error"]["message"]
            assert (await wang.http.get(f"{API}/me")).status == 200  # nothing changed yet

            by_reviewer = await wang.http.post(
                f"{API}/staff/root/password", json={"password": NEW_PASSWORD}, headers=wang.headers()
            )
            assert by_reviewer.status == 403
            missing = await admin.http.post(
                f"{API}/staff/nobody/password", json={"password": NEW_PASSWORD}, headers=admin.headers()
            )
            assert missing.status == 404

            done = await admin.http.post(path, json={"password": NEW_PASSWORD}, headers=admin.headers())
            assert done.status == 200 and (await done.json())["sessions_ended"] == 1
            assert (await wang.http.get(f"{API}/me")).status == 401
        assert gateway.backoffice is not None
        assert await gateway.backoffice.staff.check_password("wang.product", PASSWORD) is None
        async with signed_in_client(site, "wang.product", password=NEW_PASSWORD) as again:
            assert (await again.http.get(f"{API}/me")).status == 200
        kinds = [e.record["kind"] for e in await gateway.backoffice.audit.ledger.entries()]
        assert "staff_password_set" in kinds


async def test_a_member_changes_their_own_password_with_the_current_one(gateway: Gateway) -> None:
    async with served(gateway) as site:
        await make_staff(gateway, "wang.product", Role.REVIEWER, skill_groups=["product"])
        async with signed_in_client(site, "wang.product") as here, signed_in_client(site, "wang.product") as there:
            path = f"{API}/me/password"
            wrong = await here.http.put(
                path, json={"current": "not-my-password", "password": NEW_PASSWORD}, headers=here.headers()
            )
            assert wrong.status == 403 and (await wrong.json())["error"]["code"] == "wrong_password"
            weak = await here.http.put(path, json={"current": PASSWORD, "password": "aaaaaaaaaaaa"},
                                       headers=here.headers())  # fmt: skip
            assert weak.status == 400 and (await weak.json())["error"]["code"] == "weak_password"
            no_csrf = await here.http.put(path, json={"current": PASSWORD, "password": NEW_PASSWORD})
            assert no_csrf.status == 403 and (await no_csrf.json())["error"]["code"] == "csrf_failed"

            changed = await here.http.post(path, json={"current": PASSWORD, "password": NEW_PASSWORD},
                                           headers=here.headers())  # fmt: skip
            assert changed.status == 200 and (await changed.json())["sessions_ended"] == 1
            assert (await here.http.get(f"{API}/me")).status == 200  # this browser stays signed in
            assert (await there.http.get(f"{API}/me")).status == 401  # the other one is signed out

            # guessing the current password through a stolen session is throttled like sign-in
            statuses = []
            for attempt in range(6):
                response = await here.http.put(
                    path, json={"current": f"guess-{attempt}-xyz", "password": "Another-river-99"},
                    headers=here.headers(),
                )  # fmt: skip
                statuses.append(response.status)
            assert statuses == [403, 403, 403, 403, 403, 429], statuses
        assert gateway.backoffice is not None
        assert await gateway.backoffice.staff.check_password("wang.product", NEW_PASSWORD) is not None


async def test_the_password_routes_are_in_the_openapi_document(gateway: Gateway) -> None:
    async with served(gateway) as site, ClientSession(site.base) as http:
        document = await (await http.get("/api/openapi.json")).json()
    paths = document["paths"]
    assert {"put", "post"} <= set(paths[f"{API}/me/password"])
    assert "post" in paths[f"{API}/staff/{{staff_id}}/password"]
    body = paths[f"{API}/me/password"]["put"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert set(document["components"]["schemas"][body.rsplit("/", 1)[1]]["required"]) == {"current", "password"}
