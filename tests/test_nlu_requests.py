"""Several requests in one message: clause segmentation (nlu/segment.py) and the ``requests`` list
of the parse result (nlu/understanding.py), with a transport double that reads intents from
keywords, so these tests run without Rasa. Examples are written for these tests."""

from __future__ import annotations

import time
from datetime import date

import pytest

from nlu.client import Intent, NluClient, ParseResult
from nlu.normalize import default_normaliser
from nlu.segment import clause_text, clauses, content_text, numbers_masked
from nlu.understanding import UnderstandingClient

KEYWORDS = [
    ("withdraw_request", ("不退了", "撤销")),
    ("change_address", ("地址",)),
    ("invoice", ("发票", "invoice")),
    ("policy_question", ("运费险", "几天到账", "多久")),
    ("return_refund", ("退货", "return")),
    ("refund", ("退款", "refund", "取消订单")),
    ("urge", ("快点", "催")),
    ("exchange", ("换",)),
    ("order_status", ("到哪", "物流")),
    ("greet", ("在吗", "你好")),
    ("thanks", ("谢谢",)),
]


class KeywordNlu(NluClient):
    """Rasa's parse shape; the intent of the first keyword found, 0.95 sure (else out_of_scope, 0.3)."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    async def parse(self, text: str, message_id: str | None = None) -> ParseResult:
        self.texts.append(text)
        found = [(name, 0.95) for name, words in KEYWORDS if any(word in text.lower() for word in words)]
        ranking = [*found, ("out_of_scope", 0.3)] if found else [("out_of_scope", 0.3)]
        intents = [Intent(name=name, confidence=confidence) for name, confidence in ranking]
        return ParseResult(text=text, intent=intents[0], intent_ranking=intents)

    async def ready(self) -> bool:
        return True


def split(text: str) -> list[str]:
    return [c.text for c in clauses(default_normaliser()(text))]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("收货地址填错了 顺带问一下运费险怎么理赔", ["收货地址填错了", "顺带问一下运费险怎么理赔"]),
        ("裤子不要了，另外上次那单发票开公司抬头", ["裤子不要了", "另外上次那单发票开公司抬头"]),
        ("鞋子小了想换大一码 对了 上次那单的发票开了没", ["鞋子小了想换大一码", "对了 上次那单的发票开了没"]),
        ("please refund my order, also send me the invoice", ["please refund my order,", "also send me the invoice"]),
        ("亲 在吗 你好 麻烦帮我看下订单到哪了", ["亲 在吗 你好 麻烦帮我看下订单到哪了"]),
        ("亲，我的快递怎么还没到，都一个星期了", ["亲,我的快递怎么还没到,都1个星期了"]),
        ("I also want a refund", ["I also want a refund"]),
        ("我还有一件没收到", ["我还有1件没收到"]),
        ("还有多久到", ["还有多久到"]),
        ("abc@qq.com 发票发这个邮箱", ["abc@qq.com 发票发这个邮箱"]),
        ("https://item.jd.com/100012345678.html 这个能退吗", ["https://item.jd.com/100012345678.html 这个能退吗"]),
        ("😂😂", ["😂😂"]),
        ("", []),
    ],
)
def test_clauses(text: str, expected: list[str]) -> None:
    assert split(text) == expected


def test_clause_offsets_point_into_the_normalised_text() -> None:
    text = default_normaliser()("订单号:2026112100123 地址写错了。另外发票开个人的")
    for clause in clauses(text):
        assert text[clause.start : clause.end] == clause.text
    assert [c.strong for c in clauses(text)] == [False, True]


def test_the_classifier_reads_the_request_without_greetings_and_order_cards() -> None:
    normalise = default_normaliser()
    card = "订单号:2026111800123 订单金额:59.00 下单时间:2026-11-18 20:31 怎么还没发货"
    assert content_text(normalise(card)) == "怎么还没发货"
    assert content_text(normalise("亲 在吗 你好 麻烦帮我看下订单到哪了")) == "麻烦帮我看下订单到哪了"
    only_card = "订单号:2026111800123 下单时间:2026-11-18"
    assert content_text(normalise(only_card)) == numbers_masked(only_card), (
        "nothing but the card: all of it, its numbers masked like every other text's"
    )
    assert numbers_masked(only_card) == "订单号:202600000000 下单时间:2026-11-18"
    assert content_text(normalise("好的 谢谢")) == "好的 谢谢", "nothing but fillers: all of it"


@pytest.mark.parametrize(
    ("clause", "read"),
    [("还有那个火锅底料走到哪点了嘛", "火锅底料走到哪点了嘛"), ("对了 亲 帮我催下", "帮我催下"),
     ("also can you change the address", "can you change the address"),
     ("还有多久到", "还有多久到"), ("另外", "另外"), ("还有行李箱的退货", "行李箱的退货"),
     ("另外宝宝的衣服也退", "宝宝的衣服也退")],
)  # fmt: skip
def test_a_clause_is_read_without_the_connective_that_joined_it(clause: str, read: str) -> None:
    assert clause_text(clause) == read


def test_segmentation_is_linear_in_the_text() -> None:
    """Four times the text takes about four times as long (a quadratic pass would take sixteen);
    the best of three runs, so a busy machine does not decide it."""

    def cost(text: str) -> float:
        runs = []
        for _ in range(3):
            started = time.perf_counter()
            clauses(text)
            content_text(text)
            runs.append(time.perf_counter() - started)
        return min(runs)

    for unit, count in (("退货 顺便问下 ", 400), ("😂", 2500), ("啊", 2500), ("a ", 1250), ("，", 2500)):
        short, long = cost(unit * count), cost(unit * count * 4)
        assert long < 10 * max(short, 1e-4), (unit, short, long)


def reader(transport: KeywordNlu) -> UnderstandingClient:
    return UnderstandingClient(transport, today=lambda: date(2026, 11, 20))


async def test_an_intent_asked_twice_is_ranked_once() -> None:
    result = await reader(KeywordNlu()).parse("我要退款。另外发票开一下。还有退款的事")
    assert [r.intent.name for r in result.requests] == ["refund", "invoice", "refund"]
    names = [i.name for i in result.intent_ranking]
    assert names[:2] == ["refund", "invoice"] and len(names) == len(set(names))


async def test_two_asks_come_back_in_order_with_their_clauses_and_entities() -> None:
    transport = KeywordNlu()
    result = await reader(transport).parse("订单2026111500123地址写错了 顺便问下运费险怎么赔")
    assert [r.intent.name for r in result.requests] == ["change_address", "policy_question"]
    assert result.intent.name == "change_address", "the top-level intent is the first request"
    assert [i.name for i in result.intent_ranking[:2]] == ["change_address", "policy_question"]
    normalised = result.model_dump()["normalized_text"]
    for request in result.requests:
        assert normalised[request.start : request.end] == request.text
    assert [e.entity for e in result.requests[0].entities] == ["order_id"]
    assert result.requests[1].entities == []
    assert len(transport.texts) == 3, "the whole message, then each clause"


async def test_three_asks_and_a_greeting_that_is_not_a_request() -> None:
    result = await reader(KeywordNlu()).parse("亲 在吗 退货怎么寄？另外发票开公司的。对了 物流到哪了")
    assert [r.intent.name for r in result.requests] == ["return_refund", "invoice", "order_status"]
    assert result.requests[0].text.startswith("亲"), "the greeting belongs to the first request's clause"


async def test_one_ask_gives_exactly_one_request_equal_to_the_intent() -> None:
    transport = KeywordNlu()
    result = await reader(transport).parse("亲 在吗 麻烦帮我看下订单2026111500123到哪了 谢谢")
    assert len(result.requests) == 1
    assert result.requests[0].intent == result.intent
    assert result.intent.name == "order_status"
    assert result.requests[0].start == 0 and result.requests[0].text == result.model_dump()["normalized_text"]
    assert [e.entity for e in result.requests[0].entities] == ["order_id"]
    assert len(transport.texts) == 1, "one clause: one classification"


async def test_adjacent_clauses_with_the_same_intent_are_one_request() -> None:
    result = await reader(KeywordNlu()).parse("快点发货。催一下仓库")
    assert [r.intent.name for r in result.requests] == ["urge"]


async def test_a_split_at_a_comma_needs_the_whole_message_to_support_it() -> None:
    class Confident(KeywordNlu):
        async def parse(self, text: str, message_id: str | None = None) -> ParseResult:
            result = await super().parse(text, message_id)
            if len(self.texts) == 1:  # the whole message: sure it is one ask
                only = Intent(name="return_refund", confidence=0.99)
                return ParseResult(text=text, intent=only, intent_ranking=[only])
            return result

    result = await reader(Confident()).parse("东西收到了想退货，地址写错的那单也一起处理")
    assert [r.intent.name for r in result.requests] == ["return_refund"]


async def test_below_the_threshold_the_single_request_is_the_fallback() -> None:
    result = await reader(KeywordNlu()).parse("今天天气不错")
    assert result.intent.name == "nlu_fallback"
    assert [r.intent.name for r in result.requests] == ["nlu_fallback"]


@pytest.mark.parametrize(
    "text",
    ["", " ", "😂😂😂", "\x00", "a\x00b退款", "退款" * 5000, "我要退款🙏 refund пожалуйста 返金 환불 ₹", "\u202e退款"],
)
async def test_bad_input_gets_a_parse_quickly(text: str) -> None:
    client = reader(KeywordNlu())
    started = time.perf_counter()
    result = await client.parse(text)
    assert time.perf_counter() - started < 0.1 + (0.2 if len(text) > 1000 else 0), "normaliser and rules"
    assert result.requests and result.requests[0].intent == result.intent
    assert "\x00" not in result.model_dump()["normalized_text"]
