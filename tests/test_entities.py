"""Entity rules on normalised text: exact, normalised values."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from nlu.entities import REASONS, extract_entities
from nlu.normalize import default_normaliser

FRIDAY = date(2026, 11, 20)


def entities(text: str, today: date = FRIDAY) -> list[tuple[str, Any]]:
    normalised = default_normaliser()(text)
    return [(e.entity, e.value) for e in extract_entities(normalised, today)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("我的订单202611150001到哪了", [("order_id", "202611150001")]),
        ("我嘅訂單二零二六幺幺幺五洞洞洞幺喺邊度", [("order_id", "202611150001")]),
        ("单号 2026112012345678", [("order_id", "2026112012345678")]),
        ("手机号13800138000", [("phone", "13800138000")]),
        ("电话幺三八 洞洞幺三 八洞洞洞", [("phone", "13800138000")]),
        ("订单号13800138000", [("order_id", "13800138000")]),  # an order cue beats the phone shape
        ("+86 13912345678", [("phone", "13912345678")]),
        ("123456789", []),  # too short for either
    ],
)
def test_order_ids_and_phones(text: str, expected: list[tuple[str, Any]]) -> None:
    assert entities(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("听日下昼送", [("date", "2026-11-21"), ("time_slot", "14:00-18:00")]),
        ("改到下周一上午", [("date", "2026-11-23"), ("time_slot", "09:00-12:00")]),
        ("周六送", [("date", "2026-11-21")]),
        ("星期天在家", [("date", "2026-11-22")]),
        ("后天晚上", [("date", "2026-11-22"), ("time_slot", "18:00-21:00")]),
        ("十一月二十五号送", [("date", "2026-11-25")]),
        ("2026-12-01", [("date", "2026-12-01")]),
        ("25号", [("date", "2026-11-25")]),
        ("3号", [("date", "2026-12-03")]),  # the 3rd has passed this month
        ("下午3点到5点", [("time_slot", "15:00-17:00")]),
        ("next monday morning please", [("date", "2026-11-23"), ("time_slot", "09:00-12:00")]),
        ("tomorrow afternoon", [("date", "2026-11-21"), ("time_slot", "14:00-18:00")]),
    ],
)
def test_dates_are_iso_and_time_slots_are_ranges(text: str, expected: list[tuple[str, Any]]) -> None:
    assert entities(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("少了两个杯子", [("reason", "少件"), ("quantity", 2)]),
        ("买了3双", [("quantity", 3)]),
        ("要赔五十块", [("amount", 50)]),
        ("退三十八块五", [("amount", 38.5)]),
        ("差价¥20.5", [("amount", 20.5)]),
        ("商品SKU-CUP-02质量有问题", [("sku", "SKU-CUP-02"), ("reason", "质量问题")]),
        ("货号ab-123", [("sku", "AB-123")]),
    ],
)
def test_quantities_amounts_and_skus(text: str, expected: list[tuple[str, Any]]) -> None:
    assert entities(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("杯子摔碎了", "破损"),
        ("用了两天就坏了", "质量问题"),
        ("尺码偏小", "尺码不符"),
        ("发错货了，我买的是白色", "发错货"),
        ("赠品没收到", "少件"),
        ("不想要了", "七天无理由"),
        ("和图片不一样", "描述不符"),
        ("水果都发霉了", "过期变质"),
        ("it arrived broken", "破损"),
        ("I've barely used it and don't really need it anymore", "七天无理由"),
        ("條瑜伽褲著落唔啱身", "尺码不符"),
    ],
)
def test_reasons_map_to_the_preset_list(text: str, reason: str) -> None:
    assert reason in REASONS
    assert ("reason", reason) in entities(text)


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("地址改成浙江省杭州市西湖区文三路398号5幢1201，谢谢", "浙江省杭州市西湖区文三路398号5幢1201"),
        ("寄到上海市浦东新区张江路六十八号", "上海市浦东新区张江路68号"),
        ("浙江省杭州市西湖区文三路398号", "浙江省杭州市西湖区文三路398号"),
        ("please ship it to 12 Baker Street, London", "12 Baker Street, London"),
    ],
)
def test_addresses_after_a_cue_or_on_their_own(text: str, address: str) -> None:
    assert ("address", address) in entities(text)


def test_a_pointer_before_the_address_is_not_part_of_it() -> None:
    assert ("address", "上海市徐汇区漕溪北路88弄3号602室") in entities("就改成迭个：上海市徐汇区漕溪北路88弄3号602室")


def test_a_time_after_a_change_cue_is_not_an_address() -> None:
    assert [name for name, _ in entities("改成明天下午")] == ["date", "time_slot"]


def test_offsets_point_into_the_normalised_text() -> None:
    text = default_normaliser()("我嘅訂單二零二六幺幺幺五洞洞洞幺")
    (order,) = extract_entities(text, FRIDAY)
    assert text[order.start : order.end] == "202611150001"


def test_a_house_number_in_an_address_is_not_a_date() -> None:
    from datetime import date

    from nlu.entities import extract_entities

    found = extract_entities("新地址是广东省深圳市南山区科技园路1号", date(2026, 11, 22))
    assert [e.entity for e in found] == ["address"]
    assert [e.value for e in extract_entities("改到3号送", date(2026, 11, 22))] == ["2026-12-03"]
    assert not [e for e in extract_entities("幸福小区3栋 2号", date(2026, 11, 22)) if e.entity == "date"]
