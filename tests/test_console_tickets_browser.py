"""The ticket and admin pages end to end in Chromium: a reviewer claims a ticket from its URL,
reviews and approves it with an amount (the store has it approved, the customer got the notice);
an admin lists staff and sets a password; a reviewer of another queue and a front-line member
see only what their roles allow. Screenshots go to var/test-artifacts/."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, expect

from backoffice.lifecycle import TicketStatus, TicketType
from backoffice.permissions import Role
from backoffice.ticket_record import Ticket
from gateway import Gateway
from tests.backoffice_support import ZHANG_DELIVERED, ZHANG_PHONE, contact, outbox_texts
from tests.browser import artifact, browser  # noqa: F401 (fixture)
from tests.console_support import Served, make_staff, served, sign_in_page, signed_in_client

pytestmark = pytest.mark.timeout(120)


async def product_ticket(site: Served) -> tuple[Ticket, str]:
    """A customer's compensation claim for a cracked cup, waiting in the product queue's pool."""
    gateway = site.gateway
    assert gateway.store is not None and gateway.backoffice is not None
    who = await contact(gateway.store, "杯子裂了", phone=ZHANG_PHONE)
    ticket, created = await gateway.backoffice.desk.open(
        type=TicketType.COMPENSATION, customer_id=who.customer_id, summary="收到的杯子有裂痕，要求赔付",
        conversation_id=who.conversation_id, channel=who.channel, order_id=ZHANG_DELIVERED, reason="破损",
    )  # fmt: skip
    assert created and ticket.queue == "product" and ticket.status is TicketStatus.NEW, ticket
    return ticket, who.conversation_id


async def test_a_reviewer_claims_reviews_and_approves_a_ticket_in_the_browser(
    gateway: Gateway,
    browser: Browser,  # noqa: F811
) -> None:
    async with served(gateway) as site:
        ticket, conversation_id = await product_ticket(site)
        await make_staff(gateway, "wang.product", Role.REVIEWER, name="王审核", skill_groups=["product"])
        context, page = await sign_in_page(browser, site, "wang.product")
        try:
            await page.goto(f"{site.base}/console/tickets/{ticket.id}")
            await expect(page.locator("#ticket-status")).to_have_text("待领取")
            await expect(page.locator("#priority-factors li").first).to_be_visible()
            await expect(page.locator("#ticket-sla [data-clock=first_response]")).to_be_visible()
            # countdown ticking in the page (hh:mm:ss), not a static figure
            countdown = page.locator("#ticket-sla [data-clock=first_response] .sla-live")
            await expect(countdown).to_contain_text("剩余")
            assert await page.locator("#action-approved").count() == 0  # not before claiming

            await page.click("#action-claim")
            await expect(page.locator("#ticket-status")).to_have_text("已领取")
            await expect(page.locator("#ticket-assignee")).to_have_text("王审核")
            await page.click("#action-in_review")
            await expect(page.locator("#ticket-status")).to_have_text("审核中")
            assert await page.locator("#action-claim").count() == 0

            await page.click("#action-approved")
            await page.fill("#form-approved input[name=amount]", "25")
            await page.fill("#form-approved input[name=reason]", "照片显示杯身裂痕")
            await page.click("#submit-approved")
            await expect(page.locator("#ticket-status")).to_have_text("审核通过")
            timeline = page.locator("#ticket-timeline li")
            await expect(timeline).to_have_count(4)  # opened, claimed, in review, approved
            decision = page.locator("#ticket-timeline li[data-kind=decision]")
            await expect(decision).to_contain_text("王审核")
            await expect(decision).to_contain_text("¥25.00")
            await expect(decision).to_contain_text("照片显示杯身裂痕")
            await expect(page.locator("#ticket-timeline li[data-status=claimed] .actor")).to_have_text("王审核")
            await page.screenshot(path=str(artifact("console-ticket.png")), full_page=True)
        finally:
            await context.close()

        assert gateway.backoffice is not None and gateway.store is not None
        stored = await gateway.backoffice.desk.require(ticket.id)
        assert stored.status is TicketStatus.APPROVED and stored.assignee == "wang.product"
        assert stored.decision is not None and stored.decision.amount == 25.0
        assert stored.decision.by == "staff:wang.product"
        notices = await outbox_texts(gateway.store, conversation_id)
        assert any(ticket.id in text and "已审核通过" in text and "25.00" in text for text in notices), notices


async def test_another_reviewer_sees_it_changed_live(gateway: Gateway, browser: Browser) -> None:  # noqa: F811
    async with served(gateway) as site:
        ticket, _ = await product_ticket(site)
        await make_staff(gateway, "wang.product", Role.REVIEWER, name="王审核", skill_groups=["product"])
        await make_staff(gateway, "zhang.product", Role.REVIEWER, name="张审核", skill_groups=["product"])
        context, page = await sign_in_page(browser, site, "zhang.product")
        try:
            await page.goto(f"{site.base}/console/tickets/{ticket.id}")
            await expect(page.locator("#action-claim")).to_be_visible()
            await expect(page.locator("body[data-live=ticket]")).to_be_attached()  # subscribed before the change
            async with signed_in_client(site, "wang.product") as other:
                claimed = await other.http.post(f"/api/backoffice/tickets/{ticket.id}/claim", headers=other.headers())
                assert claimed.status == 200
            await expect(page.locator(".toast")).to_contain_text("已被他人更新", timeout=15_000)
            await expect(page.locator("#ticket-status")).to_have_text("已领取")
            await expect(page.locator("#ticket-assignee")).to_have_text("王审核")
            assert await page.locator("#action-claim").count() == 0  # someone else holds it now
        finally:
            await context.close()


async def test_the_admin_page_lists_staff_and_sets_a_password(gateway: Gateway, browser: Browser) -> None:  # noqa: F811
    async with served(gateway) as site:
        await make_staff(gateway, "root", Role.ADMIN, name="管理员")
        await make_staff(gateway, "wang.product", Role.REVIEWER, name="王审核", skill_groups=["product"])
        async with signed_in_client(site, "wang.product") as reviewer:
            context, page = await sign_in_page(browser, site, "root")
            try:
                await page.goto(f"{site.base}/console/admin")
                row = page.locator("#staff-wang\\.product")
                await expect(row).to_contain_text("王审核")
                await expect(row).to_contain_text("审核专员")
                await expect(row).to_contain_text("product")
                await expect(page.locator("#staff-root")).to_contain_text("管理员")

                await page.click("#password-wang\\.product")
                await page.fill("#new-password-wang\\.product", "short")
                await page.click("#password-submit-wang\\.product")
                await expect(page.locator("#password-error-wang\\.product")).to_contain_text("10")
                await page.fill("#new-password-wang\\.product", "Lantern-river-4412")
                await page.click("#password-submit-wang\\.product")
                await expect(page.locator("#password-done-wang\\.product")).to_contain_text("1")

                await page.click("#verify-audit")
                await expect(page.locator("#audit-result [data-ok=true]")).to_be_visible()
                await page.click("#config-show")
                await expect(page.locator("#config-json")).to_contain_text("logistics")
                await page.screenshot(path=str(artifact("console-admin.png")), full_page=True)
            finally:
                await context.close()
            # the reviewer's old session ended; the new password signs in
            assert (await reviewer.http.get("/api/backoffice/me")).status == 401
        assert gateway.backoffice is not None
        assert await gateway.backoffice.staff.check_password("wang.product", "Lantern-river-4412") is not None


async def test_roles_see_only_what_they_may(gateway: Gateway, browser: Browser) -> None:  # noqa: F811
    async with served(gateway) as site:
        ticket, _ = await product_ticket(site)
        await make_staff(gateway, "li.logistics", Role.REVIEWER, skill_groups=["logistics"])
        await make_staff(gateway, "liu.cs", Role.CUSTOMER_SERVICE)
        assert gateway.backoffice is not None
        # the front-line member's own submission: visible to them, but never theirs to approve
        await gateway.backoffice.desk.tickets.update_one({"_id": ticket.id}, {"$set": {"submitted_by": "liu.cs"}})

        context, page = await sign_in_page(browser, site, "li.logistics")
        try:
            await page.goto(f"{site.base}/console/tickets/{ticket.id}")
            await expect(page.locator("#ticket-denied")).to_contain_text("无权查看此工单")
            assert await page.locator("#ticket-actions").count() == 0
            await page.goto(f"{site.base}/console/tickets/T0000")
            await expect(page.locator("#ticket-denied")).to_contain_text("找不到此工单")
            response = await page.goto(f"{site.base}/console/admin")
            assert response is not None and response.status == 403
            await expect(page.locator("body")).to_contain_text("无权访问")
        finally:
            await context.close()

        context, page = await sign_in_page(browser, site, "liu.cs")
        try:
            await page.goto(f"{site.base}/console/tickets/{ticket.id}")
            await expect(page.locator("#ticket-status")).to_have_text("待领取")
            await expect(page.locator("#action-comment")).to_be_visible()
            for action in ("approved", "rejected", "claim", "in_review", "transfer", "assign"):
                assert await page.locator(f"#action-{action}").count() == 0, action
        finally:
            await context.close()
