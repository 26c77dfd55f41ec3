"""Console sign-in over HTTP: Argon2id password hashes, session cookie flags, CSRF and origin
checks on state-changing calls, throttled guessing, sign-out, and role checks on pages."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys

from aiohttp import ClientSession

from backoffice.permissions import Role
from gateway import Gateway, GatewayBuilder, Settings
from nlu.understanding import UnderstandingClient
from store.embedded import EmbeddedMongo
from store.mongo import ConversationStore
from tests.conftest import REPO_ROOT
from tests.console_support import (
    PASSWORD,
    browser_like_session,
    make_staff,
    served,
    signed_in_client,
    submit_sign_in,
)


async def test_a_password_is_stored_only_as_an_argon2id_hash(gateway: Gateway) -> None:
    async with served(gateway):
        await make_staff(gateway, "li.cs", Role.CUSTOMER_SERVICE)
        assert gateway.backoffice is not None
        doc = await gateway.backoffice.staff.staff.find_one({"_id": "li.cs"})
        assert doc is not None
        assert doc["password_hash"].startswith("$argon2id$")
        assert PASSWORD not in str(doc)
        member = await gateway.backoffice.staff.get("li.cs")
        assert member is not None and "password_hash" not in member.model_dump()


async def test_sign_in_sets_a_strict_http_only_secure_cookie_and_sign_out_ends_the_session(gateway: Gateway) -> None:
    async with served(gateway) as site:
        await make_staff(gateway, "li.cs", Role.CUSTOMER_SERVICE, name="李 客服")
        async with browser_like_session(site) as http:
            response = await submit_sign_in(http, site, "li.cs", PASSWORD)
            assert response.status == 303
            assert response.headers["Location"] == "/console/"
            cookie = next(v for k, v in response.headers.items() if k == "Set-Cookie" and "__Host-" in v)
            assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=Strict" in cookie
            assert "Domain" not in cookie and "Path=/" in cookie

            page = await http.get("/console/")
            assert page.status == 200
            assert "李 客服" in await page.text()
            assert page.headers["X-Frame-Options"] == "DENY"
            assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]

            token = re.search(r'"csrf": "([^"]+)"', await page.text())
            assert token is not None
            signed_out = await http.post(
                "/console/logout", data={"csrf_token": token.group(1)}, headers={"Origin": site.base},
                allow_redirects=False,
            )  # fmt: skip
            assert signed_out.status == 303
            again = await http.get("/console/", allow_redirects=False)
            assert again.status == 303 and again.headers["Location"].startswith("/console/login")
            me = await http.get("/api/backoffice/me")
            assert me.status == 401


async def test_a_wrong_password_or_a_forged_form_signs_nobody_in(gateway: Gateway) -> None:
    async with served(gateway) as site:
        await make_staff(gateway, "li.cs", Role.CUSTOMER_SERVICE)
        async with browser_like_session(site) as http:
            wrong = await submit_sign_in(http, site, "li.cs", "not-the-password")
            assert wrong.status == 401
            assert "工号或密码错误" in await wrong.text()
        # A cross-site form post carries no sign-in cookie of ours: refused even with the right password.
        async with ClientSession(site.base) as http:
            forged = await http.post(
                "/console/login", data={"staff_id": "li.cs", "password": PASSWORD, "csrf_token": "guess"},
                headers={"Origin": "http://evil.example"}, allow_redirects=False,
            )  # fmt: skip
            assert forged.status == 403


async def test_password_guessing_is_throttled_per_account(gateway: Gateway) -> None:
    async with served(gateway) as site:
        await make_staff(gateway, "li.cs", Role.CUSTOMER_SERVICE)
        async with browser_like_session(site) as http:
            statuses = []
            for attempt in range(7):
                password = PASSWORD if attempt == 6 else f"wrong-password-{attempt}"
                statuses.append((await submit_sign_in(http, site, "li.cs", password)).status)
            # five wrong tries, then refused for a while — even the right password
            assert statuses == [401, 401, 401, 401, 401, 429, 429]


async def test_parallel_guesses_are_counted_before_any_password_is_checked(gateway: Gateway) -> None:
    """Security finding 5: forty parallel wrong passwords were all checked against limits of 5
    per account and 20 per address (each read the count before any was written)."""
    checked = 0
    async with served(gateway) as site:
        assert gateway.backoffice is not None
        original = gateway.backoffice.staff.check_password

        async def counting(staff_id: str, password: str) -> object:
            nonlocal checked
            checked += 1
            return await original(staff_id, password)

        gateway.backoffice.staff.check_password = counting  # type: ignore[method-assign]
        await make_staff(gateway, "li.cs", Role.CUSTOMER_SERVICE)
        async with browser_like_session(site) as http:
            responses = await asyncio.gather(*(submit_sign_in(http, site, "li.cs", f"wrong-{n}") for n in range(40)))
    statuses = sorted(r.status for r in responses)
    assert statuses.count(401) == 5 and statuses.count(429) == 35
    assert checked == 5, "only the attempts within the limit reach the password check"


async def test_behind_the_proxy_each_client_is_throttled_by_its_own_address(
    settings: Settings, store: ConversationStore, nlu: UnderstandingClient
) -> None:
    """Security finding 6: behind nginx every client was 127.0.0.1, so twenty bad sign-ins from
    anyone locked the console for everyone. With nginx as a trusted proxy, X-Forwarded-For names
    the client; from anyone else it is ignored."""
    proxied = (
        GatewayBuilder(settings.with_changes(limits__trusted_proxies=("127.0.0.1",))).store(store).nlu(nlu).build()
    )
    async with served(proxied) as site:
        await make_staff(proxied, "li.cs", Role.CUSTOMER_SERVICE)
        async with browser_like_session(site) as http:
            for n in range(20):  # another staff id each time: only the per-address limit counts
                http.headers["X-Forwarded-For"] = "203.0.113.9"
                await submit_sign_in(http, site, f"nobody.{n}", "wrong")
            locked = await submit_sign_in(http, site, "li.cs", PASSWORD)
            assert locked.status == 429
            http.headers["X-Forwarded-For"] = "198.51.100.4"
            assert (await submit_sign_in(http, site, "li.cs", PASSWORD)).status == 303


async def test_state_changing_calls_from_the_browser_need_the_csrf_token_and_our_origin(gateway: Gateway) -> None:
    async with served(gateway) as site:
        await make_staff(gateway, "li.cs", Role.CUSTOMER_SERVICE)
        async with signed_in_client(site, "li.cs") as console:
            ok = await console.http.patch("/api/backoffice/me", json={"language": "en"}, headers=console.headers())
            assert ok.status == 200
            missing = await console.http.patch("/api/backoffice/me", json={"language": "zh"})
            assert missing.status == 403
            assert (await missing.json())["error"]["code"] == "csrf_failed"
            wrong_site = await console.http.patch(
                "/api/backoffice/me", json={"language": "zh"},
                headers={"X-CSRF-Token": console.csrf, "Origin": "http://evil.example"},
            )  # fmt: skip
            assert wrong_site.status == 403
            me = await (await console.http.get("/api/backoffice/me")).json()
            assert me["staff"]["language"] == "en"


async def test_a_reviewer_cannot_open_admin_or_quality_pages(gateway: Gateway) -> None:
    async with served(gateway) as site:
        await make_staff(gateway, "wang.product", Role.REVIEWER, skill_groups=["product"])
        async with signed_in_client(site, "wang.product") as console:
            assert (await console.http.get("/console/")).status == 200
            for path in ("/console/admin", "/console/quality", "/console/review", "/console/conversations/x"):
                response = await console.http.get(path)
                assert response.status == 403, path
                assert "无权访问" in await response.text()
            staff = await console.http.get("/api/backoffice/staff")
            assert staff.status == 403


async def test_the_live_socket_refuses_other_origins_and_strangers(gateway: Gateway) -> None:
    async with served(gateway) as site:
        await make_staff(gateway, "li.cs", Role.CUSTOMER_SERVICE)
        async with ClientSession(site.base) as http:
            stranger = await http.get("/console/ws", headers={"Origin": site.base})
            assert stranger.status == 401
        async with signed_in_client(site, "li.cs") as console:
            cross_site = await console.http.get("/console/ws", headers={"Origin": "http://evil.example"})
            assert cross_site.status == 403
            async with console.http.ws_connect("/console/ws", headers={"Origin": site.base}) as socket:
                await socket.send_json({"type": "subscribe", "topic": "inbox"})
                await socket.send_str("not json")
                reply = await socket.receive_json(timeout=5)
                assert reply["type"] == "error"


async def test_the_staff_password_command_reads_the_password_from_stdin(gateway: Gateway, mongo: EmbeddedMongo) -> None:
    async with served(gateway) as site:
        await make_staff(gateway, "li.cs", Role.CUSTOMER_SERVICE)
        assert gateway.store is not None
        env = {**os.environ, "MONGODB_URI": mongo.uri, "MONGODB_DATABASE": gateway.store.db.name}

        def set_password(password: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, str(REPO_ROOT / "run.py"), "backoffice", "staff-password", "li.cs"],
                input=password + "\n", env=env, capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip

        weak = await asyncio.to_thread(set_password, "short")
        assert weak.returncode == 2 and "10" in weak.stderr
        async with signed_in_client(site, "li.cs") as before:
            done = await asyncio.to_thread(set_password, "a-new-console-pass")
            assert done.returncode == 0, done.stderr
            assert "a-new-console-pass" not in done.stdout + done.stderr
            assert (await before.http.get("/api/backoffice/me")).status == 401  # signed in with the old one
        async with signed_in_client(site, "li.cs", password="a-new-console-pass") as console:
            assert (await console.http.get("/api/backoffice/me")).status == 200
