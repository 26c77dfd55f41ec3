"""Courier waybills and VAT invoices: telling them from return slips, their fields, the checks
that send a reading to review, and corrections in each type's own form."""

from __future__ import annotations

import random
from functools import cache

import pytest

from media_ocr.documents import classify
from media_ocr.fields import FieldConfig
from media_ocr.invoice import InvoiceExtractor
from media_ocr.model import INVOICE_FIELDS, WAYBILL_FIELDS, Box, TextLine
from media_ocr.pipeline import assess
from media_ocr.synthetic import DocumentSample, damage, render_vat_invoice, render_waybill
from media_ocr.validation import ReviewPolicy, normalised_value
from media_ocr.waybill import carrier_of_tracking
from tests.ocr_support import png, reader


@cache
def document(kind: str, seed: int, harm: str = "clean") -> DocumentSample:
    rng = random.Random(f"documents-{kind}-{seed}")
    image, expected = render_waybill(rng) if kind == "waybill" else render_vat_invoice(rng)
    damaged, _ = damage(image, harm, rng)  # type: ignore[arg-type]
    return DocumentSample(f"{kind}-{seed}", kind, harm, expected, damaged)  # type: ignore[arg-type]


def line(text: str, y: float, x: float = 0.0) -> TextLine:
    return TextLine(text, [0.99] * len(text), Box(x, y, x + 30 * len(text), y + 30), "test")


def test_the_words_on_the_page_tell_the_document_type() -> None:
    invoice = [line("天津增值税电子普通发票", 0), line("发票代码:012001800311", 40), line("价税合计(大写)", 80),
               line("纳税人识别号:91120222079642398Y", 120), line("订单号:94859303935", 160)]  # fmt: skip
    assert classify(invoice).document_type == "vat_invoice"
    waybill = [line("顺丰速运", 0), line("收件人:张*138****1234", 40), line("寄件人:李*", 80), line("签收人", 120)]
    assert classify(waybill).document_type == "waybill"
    # The shop's e-commerce invoice names an order, an SKU and a quantity: it stays a slip.
    shop_invoice = [line("电子发票(普通发票)", 0), line("发票号码:123", 40), line("开票日期:2026-09-01", 80),
                    line("订单编号:202611150001", 120), line("商品编码", 160), line("数量", 200),
                    line("会员ID:C1", 240)]  # fmt: skip
    assert classify(shop_invoice).document_type == "return_slip"
    assert classify([line("退货申请单", 0), line("订单号:2026", 40)]).document_type == "return_slip"


CASES = [("waybill", 1, "clean"), ("waybill", 2, "photo"), ("vat_invoice", 1, "clean"), ("vat_invoice", 2, "rotation")]


@pytest.mark.parametrize(("kind", "seed", "harm"), CASES)
def test_generated_waybills_and_invoices_are_read_whole(kind: str, seed: int, harm: str) -> None:
    sample = document(kind, seed, harm)
    got = reader("combined").read(sample.png())
    assert got.document_type == kind
    values = {name: got.fields[name].value if name in got.fields else None for name in sample.expected}
    assert values == sample.expected
    assert set(sample.expected) == set(WAYBILL_FIELDS if kind == "waybill" else INVOICE_FIELDS)


async def test_a_waybill_keeps_the_recipient_masked_and_needs_no_review() -> None:
    sample = document("waybill", 1)
    result = await assess(reader("combined").read(sample.png()), image="w.png", config=FieldConfig(),
                          policy=ReviewPolicy())  # fmt: skip
    assert result.document_type == "waybill" and not result.needs_review, result.review_reasons
    assert "****" in str(result.fields["recipient_phone"]) and "*" in str(result.fields["recipient_name"])
    assert str(result.fields["recipient_address"]).endswith("****")
    assert set(result.fields) == set(WAYBILL_FIELDS)


def test_tracking_numbers_name_their_carrier() -> None:
    found = carrier_of_tracking("SF1234567890123")
    assert found is not None and found.name == "顺丰速运"
    assert carrier_of_tracking("ABC") is None


def invoice_lines(seller_tax_id: str, total: str) -> list[TextLine]:
    return [
        line("增值税普通发票", 0, 400), line("发票代码:044031800104", 0, 900), line("发票号码:41108527", 40, 900),
        line("开票日期:2019年03月19日", 80, 900), line("名称:深圳市华云中盛科技有限公司", 160),
        line("纳税人识别号:91440300708436854B", 200), line("货物或应税劳务、服务名称", 260), line("合计", 500),
        line("¥96.72", 500, 700), line("¥15.48", 500, 1000), line("价税合计(大写)", 560),
        line(f"(小写)¥{total}", 560, 800), line("名称:深圳市南山区江南百货商场", 620),
        line(f"纳税人识别号:{seller_tax_id}", 660),
    ]  # fmt: skip


def test_an_invoice_is_read_by_its_blocks_and_its_amounts_add_up() -> None:
    got = InvoiceExtractor().extract(invoice_lines("92440300L08175019R", "112.20"), []).readings
    values = {name: found.value for name, found in got.items()}
    assert values == {
        "invoice_code": "044031800104", "invoice_number": "41108527", "issue_date": "2019-03-19",
        "amount": "96.72", "tax": "15.48", "total": "112.20", "buyer_name": "深圳市华云中盛科技有限公司",
        "buyer_tax_id": "91440300708436854B", "seller_name": "深圳市南山区江南百货商场",
        "seller_tax_id": "92440300L08175019R",
    }  # fmt: skip
    assert not any(found.doubts for found in got.values())


async def test_a_failed_tax_id_check_or_amounts_that_do_not_add_up_go_to_review() -> None:
    from media_ocr.reader import Reading

    wrong = InvoiceExtractor().extract(invoice_lines("92440300L08175019X", "112.30"), []).readings
    result = await assess(Reading(wrong, "test", "vat_invoice"), image="i.png", config=FieldConfig(),
                          policy=ReviewPolicy())  # fmt: skip
    assert result.needs_review
    assert any(r.startswith("seller_tax_id:") and "GB 32100" in r for r in result.review_reasons)
    assert any(r.startswith("total:") and "≠" in r for r in result.review_reasons)
    assert {"seller_tax_id", "total"} <= set(result.doubtful_fields)


def test_a_credit_code_misread_with_a_look_alike_is_repaired_by_its_check() -> None:
    # O read for 0: only one way to read it passes GB 32100.
    got = InvoiceExtractor().extract(invoice_lines("92440300L08175O19R", "112.20"), []).readings
    assert got["seller_tax_id"].value == "92440300L08175019R"
    assert got["seller_tax_id"].confidence < 0.9


def test_the_qr_code_of_an_invoice_confirms_its_number() -> None:
    from media_ocr.model import Barcode

    qr = Barcode("QRCode", "01,10,044031800104,41108527,96.72,20190319,55617567333517793345,ABCD,")
    got = InvoiceExtractor().extract(invoice_lines("92440300L08175019R", "112.20"), [qr]).readings
    assert got["invoice_number"].source == "text+barcode" and got["invoice_number"].confidence >= 0.99


def test_corrections_take_each_fields_own_form() -> None:
    assert normalised_value("vat_invoice", "total", "¥1,500".replace(",", "")) == "1500.00"
    assert normalised_value("vat_invoice", "issue_date", "2019年6月14日") == "2019-06-14"
    assert normalised_value("waybill", "recipient_phone", "13812345678") == "138****5678"
    assert normalised_value("waybill", "recipient_name", "张伟") == "张*"
    with pytest.raises(ValueError, match="GB 32100"):
        normalised_value("vat_invoice", "seller_tax_id", "91120222079642398X")
    with pytest.raises(ValueError, match="digits"):
        normalised_value("vat_invoice", "invoice_number", "4110852")


def test_a_return_slip_is_still_read_as_one() -> None:
    got = reader("combined").read(png("label", "photo"))
    assert got.document_type == "return_slip" and got.fields["order_id"].value
