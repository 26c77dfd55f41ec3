"""The order page in Chromium: a front-line agent opens an unshipped order from the console,
sees its state and the actions it allows, cancels and refunds it with a reason; the request's
two timelines appear, the refund reaches the payment centre's stand-in. A screenshot goes to
var/test-artifacts/console-order.png."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, expect

from backoffice.permissions import Role
from gateway import Gateway
from tests.backoffice_support import contact
from tests.browser import artifact, browser  # noqa: F401 (fixture)
from tests.console_support import make_staff, served, sign_in_page
from tests.helpers import wait_for

pytestmark = pytest.mark.timeout(120)
UNSHIPPED = "202611180002"  # the demo shop's paid order of 13800138000


async def test_an_agent_cancels_and_refunds_an_order_from_its_page(
    gateway: Gateway,
    browser: Browser,  # noqa: F811
) -> None:
    async with served(gateway) as site:
        assert gateway.store is not None and gateway.standins is not None
        who = await contact(gateway.store, "我想取消订单", phone="13800138000")
        await make_staff(gateway, "liu.cs", Role.CUSTOMER_SERVICE, name="刘客服")
        context, page = await sign_in_page(browser, site, "liu.cs")
        try:
            await page.goto(f"{site.base}/console/orders/{UNSHIPPED}")
            await expect(page.locator("h1")).to_contain_text(UNSHIPPED)
            assert await page.locator("#action-intercept").count() == 0  # not shipped: cancel, not intercept
            form = page.locator("#action-cancel_refund")
            await form.locator("input[name=customer_id]").fill(who.customer_id)
            await form.locator("input[name=reason]").fill("客户来电取消")
            await form.locator("button[type=submit]").click()
            await expect(page.locator(".toast")).to_contain_text("AS")
            request = page.locator(".request").first
            await expect(request).to_contain_text("payment_processing")
            await expect(request).to_contain_text("staff:liu.cs")
            await expect(request).to_contain_text("退款中")
            await page.screenshot(path=str(artifact("console-order.png")), full_page=True)
        finally:
            await context.close()
        payment = gateway.standins.payment
        assert payment is not None
        assert gateway.aftersales is not None
        (refund,) = await gateway.aftersales.for_order(UNSHIPPED)

        async def submitted() -> bool:
            return refund.id in payment.refunds  # type: ignore[union-attr]

        await wait_for(submitted)
