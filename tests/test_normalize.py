"""The normaliser before Rasa, case by case: scripts, widths, regional words, mishearings, numerals."""

from __future__ import annotations

import pytest

from nlu.normalize import Lexicon, TextNormaliser, default_normaliser, detect_language, to_half_width
from nlu.numerals import digits_for_chinese_numerals, positional_value


@pytest.fixture(scope="module")
def normaliser() -> TextNormaliser:
    return default_normaliser()


@pytest.mark.parametrize(
    ("original", "normalised"),
    [
        # Traditional → Simplified
        ("請問我的訂單什麼時候發貨", "请问我的订单什么时候发货"),
        ("發票抬頭寫錯了", "发票抬头写错了"),
        # Cantonese
        ("我嘅訂單喺邊度", "我的订单在哪里"),
        ("點解仲未發貨", "为什么还没发货"),
        ("唔該幫我睇下", "谢谢帮我看看"),
        ("冇收到貨", "没有收到货"),
        ("听日下昼送得唔得", "明天下午送行不行"),
        # Northeastern
        ("俺的快递咋还没到", "我的快递怎么还没到"),
        ("这咋整啊", "这怎么办啊"),
        ("你们嘎哈呢", "你们干什么呢"),
        # Southwestern
        ("莫得收到货，啥子情况", "没有收到货,什么情况"),
        ("要得", "好的"),
        # Wu
        ("阿拉的物事啥辰光到", "我们的东西什么时候到"),
        ("侬好，覅寄了", "你好,不要寄了"),
        # speech-recognition mishearings and pinyin typos
        ("我要退宽", "我要退款"),
        ("丁单号多少", "订单号多少"),
        ("物留信息", "物流信息"),
        ("转人攻", "转人工"),
        ("我要tuikuan", "我要退款"),
        ("KEFU在吗", "客服在吗"),
    ],
)
def test_regional_traditional_and_misheard_text_becomes_mandarin(
    normaliser: TextNormaliser, original: str, normalised: str
) -> None:
    assert normaliser(original) == normalised


@pytest.mark.parametrize(
    "unchanged",
    [
        "系统出问题了",
        "联系不上快递员",
        "我想调整一下",
        "伊利牛奶",
        "等一下",
        "一样的",
        "十分满意",
        "万一坏了",
        "一点点",
    ],
)
def test_words_that_only_look_like_dialect_or_numerals_stay(normaliser: TextNormaliser, unchanged: str) -> None:
    assert normaliser(unchanged) == unchanged


@pytest.mark.parametrize(
    ("spoken", "digits"),
    [
        ("订单二零二六幺幺幺五洞洞洞幺", "订单202611150001"),
        ("手机幺三八 洞洞幺三 八洞洞洞", "手机13800138000"),
        ("138-0013-8000", "13800138000"),
        ("少了两件", "少了2件"),
        ("买了三双鞋", "买了3双鞋"),
        ("退三十八块五", "退38块5"),
        ("一千二百块", "1200块"),
        ("十一月二十五号下午三点", "11月25号下午3点"),
        ("三百零五元", "305元"),
        ("十分钟", "10分钟"),
        ("2026-11-25", "2026-11-25"),
    ],
)
def test_numerals_become_digits_where_they_are_numbers(spoken: str, digits: str) -> None:
    assert digits_for_chinese_numerals(spoken) == digits


@pytest.mark.parametrize(
    ("numeral", "value"),
    [("十", 10), ("十一", 11), ("二十五", 25), ("三百五", 350), ("三百零五", 305), ("一千二", 1200), ("两万五", 25000)],
)
def test_positional_numerals(numeral: str, value: int) -> None:
    assert positional_value(numeral) == value


@pytest.mark.parametrize("not_a_number", ["万一", "千万", "百"])
def test_idioms_made_of_numerals_are_not_numbers(not_a_number: str) -> None:
    assert positional_value(not_a_number) is None


def test_full_width_forms_fold_to_ascii() -> None:
    assert to_half_width("ＳＫＵ－ＣＵＰ－０２，１２３！　ok") == "SKU-CUP-02,123! ok"


def test_the_result_keeps_the_original_and_says_what_it_saw(normaliser: TextNormaliser) -> None:
    result = normaliser.normalise("我嘅訂單喺邊度？")
    assert result.original == "我嘅訂單喺邊度？"
    assert result.text == "我的订单在哪里?"
    assert result.traditional
    assert result.varieties == ("cantonese",)
    assert result.language == "zh"
    plain = normaliser.normalise("where is my parcel")
    assert (plain.text, plain.language, plain.traditional, plain.varieties) == ("where is my parcel", "en", False, ())


@pytest.mark.parametrize(
    ("text", "language"),
    [("我要refund", "zh"), ("I want a refund for 订单", "en"), ("202611150001", "und"), ("👍", "und"), ("好", "zh")],
)
def test_language_detection(text: str, language: str) -> None:
    assert detect_language(text) == language


def test_the_lexicon_prefers_the_longest_entry_and_protected_words() -> None:
    lexicon = Lexicon.from_sections({"demo": {"系啊": "是啊", "唔": "不", "唔该": "谢谢"}}, keep=["关系"])
    assert lexicon.apply("唔该") == ("谢谢", ["demo"])
    assert lexicon.apply("关系啊") == ("关系啊", [])
    assert lexicon.apply("系啊") == ("是啊", ["demo"])


def test_a_key_mapped_two_ways_is_refused() -> None:
    with pytest.raises(ValueError, match="both"):
        Lexicon.from_sections({"a": {"冇": "没有"}, "b": {"冇": "无"}})


def test_pinyin_keys_match_whole_words_only() -> None:
    lexicon = Lexicon.from_sections({"typo": {"kefu": "客服"}})
    assert lexicon.apply("kefu在吗")[0] == "客服在吗"
    assert lexicon.apply("kefunny")[0] == "kefunny"
