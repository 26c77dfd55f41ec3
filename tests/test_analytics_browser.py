"""The problem analytics, the refund record search and the photo review queue in Chromium, on
the embedded store: a quality user sees the flagged SKU first, the clustered misses, the IVR
charts, and finds a refund by its order; an agent corrects a doubtful reading and it leaves the
queue. Screenshots: var/test-artifacts/console-analytics.png, console-ocr-review.png."""

from __future__ import annotations

import random
from pathlib import Path

from playwright.async_api import Browser, expect

from backoffice.permissions import Role
from media_ocr.pipeline import OcrWorkers
from media_ocr.synthetic import make_sample
from shop import Order
from shop.aftersales import RequestType
from store import Event
from store.mongo import ConversationStore
from tests.browser import artifact, browser  # noqa: F401
from tests.console_support import make_staff, served, sign_in_page
from tests.test_ocr_api import ocr_gateway
from tests.test_quality_analytics import order


async def test_analytics_refund_search_and_photo_review_in_the_browser(
    store: ConversationStore,
    tmp_path: Path,
    browser: Browser,  # noqa: F811
) -> None:
    gateway = ocr_gateway(store, tmp_path, OcrWorkers("combined", use_threads=True))
    async with served(gateway) as site:
        assert gateway.orders is not None and gateway.tickets is not None and gateway.store is not None
        assert gateway.aftersales is not None and gateway.ocr is not None
        for n in range(3):
            await gateway.orders.upsert([order(f"91000000000{n}", "SKU-MUG-3", f"1390000000{n}")])
            await gateway.tickets.open(type=None, customer_id=f"b-{n}", summary="马克杯有裂纹，质量问题",
                                       conversation_id=None, channel="rest", order_id=f"91000000000{n}",
                                       reason="质量问题")  # fmt: skip
        for text in ("发票可以开专票吗", "发票能开专票吗"):
            await gateway.store.log_event(Event(name="knowledge_miss", data={"text": text}))
        await gateway.store.log_event(Event(name="call_ended", data={"scenario": "order_status",
                                                                     "duration_seconds": 42.0}))  # fmt: skip
        await gateway.store.log_event(Event(name="call_rejected", data={"caller": "+8613911112222", "reason": "rate"}))
        request, _ = await gateway.aftersales.create(
            type=RequestType.REFUND,
            order_id="910000000001",
            customer_id="b-1",
            actor="customer",
            amount=49.0,
            reason="破损",
        )
        sample = make_sample("lines", "clean", random.Random("browser-review"))
        await gateway.orders.upsert([Order.model_validate(sample.slip.order_document())])
        reading = await gateway.ocr.read_bytes(sample.png(), image="slip.png", content_type="image/png",
                                               source={"request_id": request.id})  # fmt: skip
        assert reading.id is not None
        await gateway.ocr.flag(reading.id, ["quantity: a person should count the parcel"])

        await make_staff(gateway, "qa.li", Role.QUALITY, name="李 质检")
        context, page = await sign_in_page(browser, site, "qa.li", landing="/console/analytics")
        try:
            await expect(page.locator("body[data-loaded=true]")).to_have_count(1, timeout=15_000)
            first = page.locator("#a-sku-table tbody tr").first
            await expect(first).to_have_attribute("data-sku", "SKU-MUG-3")
            await expect(first.locator(".badge")).to_have_count(1)
            await expect(page.locator("#a-miss-table tbody tr")).to_have_count(1)
            await expect(page.locator("#a-miss-table tbody tr td").nth(1)).to_have_text("2")
            for canvas in ("chart-categories", "chart-category-trend", "chart-ivr", "chart-nuisance"):
                drawn = await page.evaluate("(id) => Chart.getChart(document.getElementById(id)) !== undefined", canvas)
                assert drawn, canvas
            await expect(page.locator("#a-nuisance")).to_contain_text("1")
            await page.screenshot(path=str(artifact("console-analytics.png")), full_page=True)

            await page.goto(f"{site.base}/console/refunds")
            await expect(page.locator("#r-record-table")).to_have_count(1, timeout=15_000)
            await page.fill("#r-order", "910000000001")
            await page.click("#r-find")
            await expect(page.locator("#r-record-table tbody tr")).to_have_count(1)
            await expect(page.locator(f"#r-record-table tr[data-request='{request.id}']")).to_have_count(1)
        finally:
            await context.close()

        await make_staff(gateway, "li.cs", Role.CUSTOMER_SERVICE, name="李 客服")
        context, page = await sign_in_page(browser, site, "li.cs", landing="/console/ocr-review")
        try:
            card = page.locator(f"article[data-result='{reading.id}']")
            await expect(card).to_have_count(1, timeout=15_000)
            await expect(card.locator(".reasons")).to_contain_text("quantity")
            shown = await page.wait_for_function(
                "(id) => { const img = document.querySelector(`article[data-result='${id}'] img`);"
                " return img && img.complete && img.naturalWidth > 0; }",
                arg=reading.id,
                timeout=15_000,
            )  # the reviewer's picture (doubtful fields outlined, personal data blurred) is there
            assert await shown.json_value()
            await page.screenshot(path=str(artifact("console-ocr-review.png")), full_page=True)
            row = card.locator("tr[data-field='quantity']")
            await row.locator("input[name='quantity']").fill(str(sample.slip.quantity))
            await row.locator("button.save").click()
            await expect(card).to_have_count(0)
            corrected = await gateway.ocr.get(reading.id)
            assert corrected is not None and not corrected.needs_review
            assert corrected.corrections[-1].who == "staff:li.cs"
        finally:
            await context.close()
