"""Field extraction from recognised lines: label synonyms, layouts, value formats, barcodes."""

from __future__ import annotations

import pytest

from media_ocr.fields import DEFAULT_REASONS, FieldConfig, FieldExtractor
from media_ocr.model import Barcode, Box, TextLine

extractor = FieldExtractor()


def line(text: str, x: float = 0, y: float = 0, confidence: float = 0.99, width: float | None = None) -> TextLine:
    """A recognised line at (x, y), 30 px high, 30 px per character unless given."""
    return TextLine(text, [confidence] * len(text), Box(x, y, x + (width or 30 * len(text)), y + 30), "test")


def fields_of(*lines: TextLine, barcodes: tuple[Barcode, ...] = ()) -> dict[str, object]:
    return {name: reading.value for name, reading in extractor.extract(lines, barcodes).readings.items()}


@pytest.mark.parametrize(
    ("label", "field"),
    [
        ("订单号", "order_id"),
        ("订单编号", "order_id"),
        ("原订单号", "order_id"),
        ("订单号码", "order_id"),
        ("Order No", "order_id"),
        ("商品SKU", "sku"),
        ("商品编码", "sku"),
        ("货号", "sku"),
        ("SKU", "sku"),
        ("退货数量", "quantity"),
        ("数量", "quantity"),
        ("退货件数", "quantity"),
        ("Qty", "quantity"),
        ("退货原因", "reason"),
        ("原因", "reason"),
        ("退货理由", "reason"),
        ("客户ID", "customer_id"),
        ("会员ID", "customer_id"),
        ("客户编号", "customer_id"),
        ("会员编号", "customer_id"),
        ("退货日期", "return_date"),
        ("申请日期", "return_date"),
        ("日期", "return_date"),
    ],
)
def test_every_label_synonym_names_its_field(label: str, field: str) -> None:
    value = {
        "order_id": "202611150001",
        "sku": "SKU-TEA-500",
        "quantity": "2",
        "reason": "破损",
        "customer_id": "VIP123456",
        "return_date": "2026-11-20",
    }[field]
    expected: object = 2 if field == "quantity" else value
    assert fields_of(line(f"{label}：{value}")) == {field: expected}


@pytest.mark.parametrize(
    ("printed", "iso"),
    [
        ("2026-11-20", "2026-11-20"),
        ("2026/11/20", "2026-11-20"),
        ("2026.11.20", "2026-11-20"),
        ("2026年11月20日", "2026-11-20"),
        ("2026年11月5日", "2026-11-05"),
        ("2026 年 11 月 5 日", "2026-11-05"),
        ("20261120", "2026-11-20"),
        ("20/11/2026", "2026-11-20"),
        ("11/20/2026", "2026-11-20"),
        ("二〇二六年十一月二十日", "2026-11-20"),
        ("2O26-11-2O", "2026-11-20"),  # letter O read for zero
    ],
)
def test_date_formats_become_iso_dates(printed: str, iso: str) -> None:
    assert fields_of(line(f"退货日期：{printed}")) == {"return_date": iso}


def test_an_ambiguous_day_and_month_is_read_but_doubted() -> None:
    reading = extractor.extract([line("日期：05/11/2026")]).readings["return_date"]
    assert reading.value == "2026-11-05"
    assert reading.confidence <= 0.5 and "day/month" in reading.doubts[0]


def test_an_impossible_date_is_not_a_date() -> None:
    reading = extractor.extract([line("退货日期：2026-13-45")]).readings["return_date"]
    assert reading.value is None and reading.doubts


def test_label_and_value_separators_and_spaces_vary() -> None:
    for text in ("订单号：202611150001", "订单号:202611150001", "订单号 202611150001", "订 单 号：2026 1115 0001"):
        assert fields_of(line(text)) == {"order_id": "202611150001"}, text


def test_look_alike_letters_in_numbers_are_read_as_digits_but_trusted_less() -> None:
    reading = extractor.extract([line("订单号：2026lll5OOO1")]).readings["order_id"]
    assert reading.value == "202611150001"
    assert reading.confidence < 0.8


def test_quantities_in_digits_chinese_numerals_and_with_units() -> None:
    assert fields_of(line("数量：3件")) == {"quantity": 3}
    assert fields_of(line("退货数量：两")) == {"quantity": 2}
    assert fields_of(line("数量：十二")) == {"quantity": 12}


def test_an_sku_value_is_not_taken_for_its_label() -> None:
    assert fields_of(line("SKU:SKU-FAN-0362")) == {"sku": "SKU-FAN-0362"}
    assert fields_of(line("SKU SKU-LAMP-168")) == {"sku": "SKU-LAMP-168"}
    assert fields_of(line("商品SKU：sku-tea-500")) == {"sku": "SKU-TEA-500"}


def test_reasons_are_the_presets_and_a_near_miss_is_doubted() -> None:
    for reason in DEFAULT_REASONS:
        assert fields_of(line(f"退货原因：{reason}")) == {"reason": reason}
    near = extractor.extract([line("退货原因：描述不")]).readings["reason"]
    assert near.value == "描述不符" and near.confidence < 0.8 and near.doubts
    unknown = extractor.extract([line("退货原因：不想要了")]).readings["reason"]
    assert unknown.value == "不想要了" and "not one of the preset" in unknown.doubts[0]


def test_the_reason_presets_are_configurable() -> None:
    custom = FieldExtractor(FieldConfig(reasons=("不想要了", "破损")))
    assert custom.extract([line("原因：不想要了")]).readings["reason"].value == "不想要了"


def test_other_labels_are_never_taken_for_fields() -> None:
    lines = [
        line("开票日期：2026年09月13日"),
        line("发票号码：31041726142251521657", y=40),
        line("订单编号：202612077755", y=80),
    ]
    assert fields_of(*lines) == {"order_id": "202612077755"}


def test_several_fields_on_one_line() -> None:
    assert fields_of(line("订单号：202611150001 数量：2 原因：破损")) == {
        "order_id": "202611150001",
        "quantity": 2,
        "reason": "破损",
    }


def test_form_layout_value_in_the_cell_right_of_the_label() -> None:
    cells = [
        line("订单号码", x=40, y=100),
        line("202610163750", x=250, y=100, width=230),
        line("商品SKU", x=630, y=100),
        line("SKU-CUP-0691", x=840, y=100, width=200),
        line("数量", x=40, y=160),
        line("4", x=250, y=160),
        line("退货理由", x=630, y=160),
        line("少件", x=840, y=160),
    ]
    assert fields_of(*cells) == {"order_id": "202610163750", "sku": "SKU-CUP-0691", "quantity": 4, "reason": "少件"}


def test_header_table_layout_value_in_the_cell_below_the_label() -> None:
    cells = [
        line("原订单号", x=50, y=100),
        line("会员ID", x=450, y=100),
        line("退货日期", x=850, y=100),
        line("202610076738", x=50, y=160, width=230),
        line("VIP50677843", x=450, y=160, width=200),
        line("20261111", x=850, y=160, width=150),
        line("货号", x=50, y=300),
        line("数量", x=450, y=300),
        line("原因", x=850, y=300),
        line("SKU-SHOE-0939", x=50, y=360, width=240),
        line("1", x=450, y=360),
        line("质量问题", x=850, y=360),
    ]
    assert fields_of(*cells) == {
        "order_id": "202610076738",
        "customer_id": "VIP50677843",
        "return_date": "2026-11-11",
        "sku": "SKU-SHOE-0939",
        "quantity": 1,
        "reason": "质量问题",
    }


def test_a_misread_label_character_is_tolerated() -> None:
    assert fields_of(line("订单号权：202611150001")) == {"order_id": "202611150001"}
    assert fields_of(line("会员D：VIP36645294")) == {"customer_id": "VIP36645294"}
    assert fields_of(line("会员1D：C16130433")) == {"customer_id": "C16130433"}


def test_a_label_whose_value_cannot_be_read_is_never_silently_absent() -> None:
    extraction = extractor.extract([line("订单号：", x=0, y=0)])
    reading = extraction.readings["order_id"]
    assert reading.value is None and "could not be read" in reading.doubts[-1]
    assert "order_id" in extraction.retry  # the reader looks at that region again


def test_a_qr_code_confirms_the_printed_order_number() -> None:
    code = Barcode("QR Code", "202611150001")
    reading = extractor.extract([line("订单号：202611150001", confidence=0.7)], [code]).readings["order_id"]
    assert reading.value == "202611150001" and reading.confidence >= 0.99 and reading.source == "text+barcode"


def test_a_qr_code_corrects_a_misread_digit() -> None:
    code = Barcode("QR Code", "202611150001")
    reading = extractor.extract([line("订单号：202611150007")], [code]).readings["order_id"]
    assert reading.value == "202611150001" and reading.source == "barcode"


def test_an_order_number_only_in_a_qr_code_is_used_but_doubted() -> None:
    readings = extractor.extract([line("退货标签")], [Barcode("QR Code", "order:202611150001")]).readings
    assert readings["order_id"].value == "202611150001"
    assert readings["order_id"].doubts == ["order_id: read from a barcode only"]


def test_a_tracking_barcode_is_not_an_order_number() -> None:
    assert fields_of(line("退货标签"), barcodes=(Barcode("Code 128", "SF579511174432"),)) == {}


def test_disagreeing_engines_lower_confidence_and_keep_both_readings() -> None:
    primary = line("商品SKU：SKU-SH0E-0939", confidence=0.74)
    primary.second_opinion = line("商品SKU：SKU-SHOE-0939", confidence=0.95)
    reading = extractor.extract([primary]).readings["sku"]
    assert reading.value == "SKU-SHOE-0939"  # the more confident reading
    assert reading.alternatives == ["SKU-SH0E-0939"]
    assert reading.confidence <= 0.5 and "disagree" in reading.doubts[0]


def test_agreeing_engines_raise_confidence() -> None:
    primary = line("数量：2", confidence=0.7)
    primary.second_opinion = line("数量: 2", confidence=0.8)
    assert extractor.extract([primary]).readings["quantity"].confidence > 0.9
