"""Helpers for the console's tests: a gateway served on a real loopback port (for Chromium),
staff accounts with passwords, and signing a browser page or an HTTP client in.

Cookies: the console's session cookie is Secure; Chromium keeps Secure cookies on
http://127.0.0.1, and aiohttp's client does when told the origin counts as secure.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import ClientResponse, ClientSession, CookieJar
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, BrowserContext, Page, expect

from backoffice.permissions import Role
from backoffice.staff import StaffMember
from gateway import Gateway, build_app
from tests.conftest import DEMO_ORDERS

PASSWORD = "correct-horse-battery-7"


@dataclass
class Served:
    gateway: Gateway
    server: TestServer

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"


@asynccontextmanager
async def served(gateway: Gateway) -> AsyncIterator[Served]:
    """The gateway's whole web app on a loopback port, with the demo orders loaded."""
    server = TestServer(build_app(gateway), host="127.0.0.1")
    await server.start_server()
    try:
        await gateway.seed_orders(DEMO_ORDERS)
        yield Served(gateway, server)
    finally:
        await server.close()


async def make_staff(
    gateway: Gateway,
    staff_id: str,
    *roles: Role,
    name: str | None = None,
    skill_groups: list[str] | None = None,
    language: str = "zh",
    password: str = PASSWORD,
) -> StaffMember:
    assert gateway.backoffice is not None
    member, _ = await gateway.backoffice.staff.create(
        staff_id, name=name or staff_id, roles=list(roles), skill_groups=skill_groups, online=True, language=language
    )
    await gateway.backoffice.staff.set_password(staff_id, password)
    return member


async def sign_in_page(
    browser: Browser,
    served: Served,
    staff_id: str,
    *,
    password: str = PASSWORD,
    locale: str = "zh-CN",
    landing: str = "/console/",
    timezone_id: str | None = None,
) -> tuple[BrowserContext, Page]:
    """A new browser context signed in as this staff member, on ``landing`` (the inbox); with
    ``timezone_id`` the browser's clock is in that zone."""
    context = await browser.new_context(locale=locale, viewport={"width": 1400, "height": 900}, timezone_id=timezone_id)
    page = await context.new_page()
    await page.goto(f"{served.base}/console/login?next={landing}")
    await page.fill("#staff_id", staff_id)
    await page.fill("#password", password)
    await page.click("#sign-in")
    await expect(page.locator("#me-name")).to_be_visible(timeout=15_000)
    return context, page


def browser_like_session(served: Served) -> ClientSession:
    """An HTTP client that keeps the console's Secure cookies on loopback, as a browser does."""
    return ClientSession(served.base, cookie_jar=CookieJar(unsafe=True, treat_as_secure_origin=[served.base]))


async def submit_sign_in(http: ClientSession, served: Served, staff_id: str, password: str) -> ClientResponse:
    """Fetch the sign-in form (its CSRF cookie and field) and post it from our origin; the
    response is not followed (303 on success)."""
    form = await (await http.get("/console/login")).text()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert csrf is not None
    return await http.post(
        "/console/login",
        data={"staff_id": staff_id, "password": password, "csrf_token": csrf.group(1), "next": "/console/"},
        headers={"Origin": served.base},
        allow_redirects=False,
    )


@asynccontextmanager
async def signed_in_client(
    served: Served, staff_id: str, password: str = PASSWORD, *, landing: str = "/console/"
) -> AsyncIterator[ConsoleClient]:
    """An HTTP client holding a console session (cookie + CSRF token), as a browser would.
    ``landing``: a page this staff member may open, to read the CSRF token from."""
    async with browser_like_session(served) as http:
        response = await submit_sign_in(http, served, staff_id, password)
        assert response.status == 303, await response.text()
        page = await (await http.get(landing)).text()
        token = re.search(r'"csrf": "([^"]+)"', page)
        assert token is not None, page[:500]
        yield ConsoleClient(http, token.group(1), served.base)


@dataclass
class ConsoleClient:
    http: ClientSession
    csrf: str
    origin: str

    def headers(self) -> dict[str, str]:
        return {"X-CSRF-Token": self.csrf, "Origin": self.origin}
