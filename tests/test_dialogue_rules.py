"""The rules under the flows, without a server: address completeness, numbered choices, the
tax-id checksum, reply language, the policy file and negative-emotion detection."""

from __future__ import annotations

from pathlib import Path

import pytest

from dialogue.address import check_address
from dialogue.choices import resolve_choice
from dialogue.emotion import detect_emotion
from dialogue.language import reply_language
from shop import OrderItem
from shop.policy import AfterSalesPolicy, PolicyError
from shop.taxid import valid_credit_code


@pytest.mark.parametrize(
    ("address", "missing"),
    [
        ("广东省深圳市南山区科技园路1号", ()),
        ("上海市浦东新区张江路88弄3号", ()),
        ("浙江省杭州市西湖区文三路 398 号 5 幢 1201", ()),
        ("新疆维吾尔自治区乌鲁木齐市天山区解放北路12号", ()),
        ("广东省东莞市长安镇振安路5号", ()),  # no districts in 东莞: towns directly
        ("南山区科技园路1号", ("province", "city")),
        ("北京朝阳区建国路", ("street",)),
        ("广东省深圳市科技园路1号", ("district",)),
        ("12 Nathan Road, Kowloon", ()),
        ("Nathan Road", ("street", "city")),
    ],
)
def test_address_completeness(address: str, missing: tuple[str, ...]) -> None:
    assert check_address(address).missing == missing


def test_numbered_answers_pick_the_offered_choice() -> None:
    slots = {"choices": ["202611180002", "202611150001", "202611020003"]}
    assert resolve_choice("2", slots) == "202611150001"
    assert resolve_choice("第三个", slots) == "202611020003"
    assert resolve_choice(" 1. ", slots) == "202611180002"
    assert resolve_choice("4", slots) is None
    assert resolve_choice("2件", slots) is None
    assert resolve_choice("2", {}) is None


def test_unified_social_credit_code_checksum() -> None:
    assert valid_credit_code("91330106MA27XL0E01")
    assert valid_credit_code("91110108551385082q")  # case does not matter
    assert not valid_credit_code("91330106MA27XL0E02")
    assert not valid_credit_code("91330106MA27XL0E0")
    assert not valid_credit_code("91330106MA27XL0EI1")  # I is not in the alphabet


def test_codes_and_a_bare_ok_keep_the_conversation_language() -> None:
    assert reply_language("91330106MA27XL0E01", "en", "zh") == "zh"
    assert reply_language("buyer@example.com", "en", "zh") == "zh"
    assert reply_language("ok", "en", "zh") == "zh"
    assert reply_language("where is my parcel", "en", "zh") == "en"
    assert reply_language("我要退款", "zh", "en") == "zh"


def test_the_shipped_policy_loads_and_applies_exclusions() -> None:
    policy = AfterSalesPolicy.load()
    assert policy.return_window_days == 7
    fresh = OrderItem(sku="S1", name="大闸蟹", quantity=1, price=399, category="fresh")
    sealed = OrderItem(sku="S2", name="面膜", quantity=1, price=99, category="hygiene")
    opened = OrderItem(sku="S3", name="面膜", quantity=1, price=99, category="hygiene", opened=True)
    plain = OrderItem(sku="S4", name="保温杯", quantity=1, price=89)
    assert policy.exclusion(fresh) == "fresh"
    assert policy.exclusion(sealed) is None
    assert policy.exclusion(opened) == "hygiene"
    assert policy.exclusion(plain) is None
    assert policy.exclusion_label("fresh", "zh") == "生鲜食品"


def test_a_bad_policy_file_says_where(tmp_path: Path) -> None:
    path = tmp_path / "policy.yml"
    path.write_text("return_window_days: -3\nunknown_rule: 1\n", encoding="utf-8")
    with pytest.raises(PolicyError) as raised:
        AfterSalesPolicy.load(path)
    assert "return_window_days" in str(raised.value) and "unknown_rule" in str(raised.value)
    path.write_text("[1, 2", encoding="utf-8")
    with pytest.raises(PolicyError, match="invalid YAML"):
        AfterSalesPolicy.load(path)


# (text, expected level, threat) across varieties; the lexicon is dialogue/lexicon/emotion.yml.
EMOTION_CASES: list[tuple[str, str, bool]] = [
    ("你们这什么垃圾服务！！！再不处理我就投诉到12315", "angry", True),
    ("气死我了，东西到现在都没发", "angry", False),
    ("氣死我了，你們這是黑店吧", "angry", False),
    ("好嬲啊，搞乜鬼", "angry", False),
    ("真是闹心死了，咋整的", "angry", False),
    ("搞锤子哦，气惨了", "angry", False),
    ("气煞人了，拆烂污", "angry", False),
    ("THIS IS RIDICULOUS, worst service ever", "angry", False),
    ("you are scammers, I will report you", "angry", True),
    ("再不退款我就去消协告你们", "angry", True),
    ("我要给差评，还要发微博曝光", "angry", True),  # three threats at once
    ("I'll file a chargeback with my bank", "negative", True),
    ("有点失望，等了好久", "negative", False),
    ("怎么回事，说好的今天到", "negative", False),
    ("I'm quite disappointed with the delivery", "negative", False),
    ("我想投诉一下快递员", "calm", False),
    ("我不生气，就问问什么时候到", "calm", False),
    ("没关系，不着急", "calm", False),
    ("收到的杯子碎了，怎么处理", "calm", False),
    ("麻烦您帮我查一下订单", "calm", False),
    ("滚筒洗衣机的门坏了", "calm", False),
    ("我妈的手机号改了", "calm", False),
    ("where is my order", "calm", False),
    ("not angry, no rush", "calm", False),
    ("多谢晒", "calm", False),
]


@pytest.mark.parametrize(("text", "level", "threat"), EMOTION_CASES)
def test_negative_emotion_levels_and_threats(text: str, level: str, threat: bool) -> None:
    emotion = detect_emotion(text)
    assert (emotion.level, emotion.complaint_threat) == (level, threat), emotion.cues
    assert bool(emotion.cues) == (level != "calm" or threat)


def test_spoken_prompts_read_choices_as_keys_and_stay_short() -> None:
    from dialogue.render import MAX_SPOKEN_CHARS, spoken_prompt
    from dialogue.turn import Reply
    from store.models import QuickReply

    choices = (QuickReply(title="确认", payload="确认"), QuickReply(title="取消", payload="取消"))
    timeline = "订单 202611150001（西湖龙井 500g）当前状态：已发货，运输中。\n最新物流：\n2026-11-16 【杭州】快件已发往"
    prompt = spoken_prompt([Reply(timeline), Reply("请问要退款吗？\n1. 确认\n2. 取消", choices)], "zh")
    assert prompt.keys == {"1": "确认", "2": "取消"}
    assert prompt.text.endswith("确认请按1，取消请按2。")
    assert "最新物流" not in prompt.text and "1. 确认" not in prompt.text
    long = spoken_prompt([Reply("这是一句很长的话。" * 30)], "zh")
    assert len(long.text) <= MAX_SPOKEN_CHARS and long.text.endswith("。")
    english = spoken_prompt([Reply("Shall I cancel it?", (QuickReply(title="Yes", payload="yes"),))], "en")
    assert english.text == "Shall I cancel it? For Yes press 1." and english.keys == {"1": "yes"}


def test_tax_id_kinds_shared_by_dialogue_and_ocr() -> None:
    from shop.taxid import credit_code_check_character, tax_id_kind

    assert tax_id_kind("91120222079642398Y") == "credit_code"  # printed on a real e-invoice
    assert tax_id_kind("91120222079642398X") == "invalid"  # one character off: the check fails
    assert credit_code_check_character("91120222079642398") == "Y"
    assert tax_id_kind("410305123456789") == "old_registration"  # 15 digits: nothing to check
    assert tax_id_kind("312705303") == "invalid"
