"""Ticket classification: the ticket type, a finer category and the cues that decided them,
from the conversation's intents and the customer's words.

Look-alike cases are told apart by what is damaged and by negation: "外箱压扁了，东西没坏" is
packaging damage (a carrier claim), "包装完好但杯子碎了" is product damage (a product case).
The queue a category goes to is configuration (``backoffice.config``), not decided here.

Pure functions on text; the text is expected in Simplified Chinese or English (the NLU
normaliser's output or the customer's own words).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import intents
import textpatterns
from backoffice.lifecycle import TicketType

FOOD_SAFETY = textpatterns.compile(
    r"(食物中毒|吃坏|拉肚子|腹泻|呕吐|吐了|异物|虫子|头发丝|发霉|霉变|变质|过期|馊|食品安全|food poisoning|"
    r"made me sick|mou?ld|insect|expired)",
    textpatterns.IGNORECASE,
)

_PACKAGING = r"(外包装|包装盒|包装箱|包装袋|包装|外箱|纸箱|箱子|个箱|盒子|外盒|快递袋|快递盒|快递箱|泡沫|封条|胶带)"
_PACKAGING_EN = r"(box|package|packaging|carton|parcel)"
_PACKAGING_DAMAGE = textpatterns.compile(
    _PACKAGING + r"[^，。,.!！里内中]{0,3}?(破|烂|压扁|压坏|压变形|变形|撕|裂|湿|凹|瘪|损)"
    r"|(破损|破烂|压扁|湿透)的?"
    + _PACKAGING
    + "|"
    + _PACKAGING_EN
    + r"\s+((was|is|got|were|came|arrived)\s+)?(\w+\s+)?(damaged|crushed|torn|wet|dented|squashed)"
    r"|(damaged|crushed|torn|wet|dented|squashed)\s+" + _PACKAGING_EN,
    textpatterns.IGNORECASE,
)
_PACKAGING_INTACT = textpatterns.compile(
    _PACKAGING + r".{0,3}?(完好|没破|没坏|没有破|没有坏|好好的|无损|没问题)"
    r"|" + _PACKAGING_EN + r"\s+(was|is)\s+(fine|ok|intact|undamaged)",
    textpatterns.IGNORECASE,
)
_PRODUCT_DAMAGE = textpatterns.compile(
    r"(碎了|碎掉|摔碎|摔坏|爆了|爆咗|裂了|裂开|裂纹|坏了|损坏|破损|破了|断了|划痕|刮花|凹陷|磕坏|磕碰|缺角|漏液|漏了|变形|屏幕?碎|"
    r"broken|cracked|shattered|smashed|scratched|dented|leak)",
    textpatterns.IGNORECASE,
)
_PRODUCT_INTACT = textpatterns.compile(
    r"(东西|商品|里面|物品|产品|货|宝贝|杯子|手机|衣服).{0,3}?(没坏|没有坏|完好|没事|没有事|冇事|好好的|还好|正常|没问题|没损坏)"
    r"|(item|product|contents?)s? (is |are )?(fine|ok|intact|undamaged)",
    textpatterns.IGNORECASE,
)

_CUE_WORDS: dict[str, tuple[str, ...]] = {
    "wrong_item": (
        "发错", "寄错", "不是我买的", "不是我要的", "颜色不对", "型号不对", "款式不对", "wrong item", "wrong colou?r",
    ),
    "missing_item": ("少了", "少件", "漏发", "缺件", "少发", "没收到赠品", "赠品没", "少一个", "少一件", "missing"),
    "not_as_described": (
        "描述不符", "与描述", "和描述", "图片不一样", "实物不符", "色差", "虚假宣传", "not as described",
    ),
    "quality": (
        "质量", "次品", "做工", "开线", "掉色", "起球", "故障", "不工作", "失灵", "异响", "用不了", "不能用", "打不开",
        "defect", "faulty", "stopped working",
    ),
    "lost_parcel": (
        "丢件", "丢失", "丢了", "显示.{0,2}签收.{0,8}没收到", "签收.{0,8}没收到", "lost parcel", "never arrived",
    ),
    "refund_progress": ("退款.{0,4}(没到|还没|未到|进度)", "钱.{0,3}没退", "refund.{0,10}(not|yet)"),
    "late_delivery": (
        "太慢", "好慢", "延迟", "迟迟", "还没到", "还不到", "还没收到", "不动了", "没更新", "停滞", "超时", "几天了",
        "这么久", "一个礼拜了", "一周了",
        "late", "delayed", "still not",
    ),
    "price_drop": ("降价", "价保", "差价", "补差", "便宜了", "price drop", "price protection"),
    "no_reason": (
        "不想要", "不喜欢", "七天无理由", "7天无理由", "买错", "尺码", "大了", "小了", "不合适", "changed my mind",
        "doesn'?t fit",
    ),
    "service_attitude": ("态度", "骂人", "不理人", "敷衍", "爱答不理", "推脱", "rude", "unhelpful"),
    "invoice_issue": ("发票", "抬头", "税号", "invoice", "fapiao"),
    "address_change": (
        "改地址", "地址.{0,3}(错|改)", "改派", "收货地址", "送货时间", "配送时间", "change (the )?address",
    ),
}  # fmt: skip
"""Words that name a category, checked in this order after food safety and damage."""
_CATEGORY_CUES = tuple(
    (name, textpatterns.compile("(" + "|".join(words) + ")", textpatterns.IGNORECASE))
    for name, words in _CUE_WORDS.items()
)

CATEGORY_LABELS: dict[str, dict[str, str]] = {
    "product_damage": {"zh": "商品破损", "en": "product damaged"},
    "packaging_damage": {"zh": "包装破损", "en": "packaging damaged"},
    "food_safety": {"zh": "食品安全", "en": "food safety"},
    "wrong_item": {"zh": "发错货", "en": "wrong item"},
    "missing_item": {"zh": "少件漏发", "en": "missing item"},
    "not_as_described": {"zh": "描述不符", "en": "not as described"},
    "quality": {"zh": "质量问题", "en": "quality problem"},
    "lost_parcel": {"zh": "丢件", "en": "lost parcel"},
    "late_delivery": {"zh": "物流延迟", "en": "late delivery"},
    "price_drop": {"zh": "降价补差", "en": "price drop"},
    "no_reason": {"zh": "无理由退换", "en": "no-reason return"},
    "service_attitude": {"zh": "服务态度", "en": "service attitude"},
    "refund_progress": {"zh": "退款进度", "en": "refund progress"},
    "invoice_issue": {"zh": "发票问题", "en": "invoice"},
    "address_change": {"zh": "地址或时间变更", "en": "address or time change"},
    "other": {"zh": "其他", "en": "other"},
}

# The shop's reason presets (``nlu.entities.REASONS``) as categories.
_REASON_CATEGORIES = {
    "质量问题": "quality",
    "尺码不符": "no_reason",
    "发错货": "wrong_item",
    "少件": "missing_item",
    "七天无理由": "no_reason",
    "描述不符": "not_as_described",
    "过期变质": "food_safety",
    "降价补差": "price_drop",
}

INTENT_TYPES: dict[str, TicketType] = {
    i.name: TicketType(i.ticket_type) for i in intents.all_intents().values() if i.ticket_type is not None
}
"""The ticket type a person's decision on each intent opens (the intent registry's)."""

# When only the category is known, the type it most likely asks for.
_CATEGORY_TYPES = {
    "product_damage": TicketType.COMPENSATION,
    "packaging_damage": TicketType.COMPENSATION,
    "food_safety": TicketType.COMPLAINT,
    "wrong_item": TicketType.EXCHANGE,
    "missing_item": TicketType.RESEND,
    "not_as_described": TicketType.RETURN_REFUND,
    "quality": TicketType.RETURN_REFUND,
    "lost_parcel": TicketType.COMPENSATION,
    "late_delivery": TicketType.COMPENSATION,
    "price_drop": TicketType.COMPENSATION,
    "no_reason": TicketType.RETURN_REFUND,
    "service_attitude": TicketType.COMPLAINT,
    "refund_progress": TicketType.REFUND,
    "invoice_issue": TicketType.INVOICE,
    "address_change": TicketType.ORDER_CHANGE,
}


@dataclass(frozen=True, slots=True)
class Classification:
    type: TicketType
    category: str
    confidence: float
    cues: tuple[str, ...] = field(default_factory=tuple)
    """What decided it, for the agent: ``declared:refund`` (the flow that ran), ``intent:refund``,
    ``text:外箱压扁``, ``reason:破损`` …"""

    def label(self, language: str = "zh") -> str:
        labels = CATEGORY_LABELS.get(self.category, CATEGORY_LABELS["other"])
        return labels.get(language, labels["zh"])


def damage_kind(text: str) -> tuple[str | None, str | None]:
    """``product_damage``, ``packaging_damage`` or None, with the words that decided it."""
    packaging = _PACKAGING_DAMAGE.search(text)
    if packaging and _PACKAGING_INTACT.search(text):
        packaging = None
    # Product damage words outside the packaging phrase ("外箱破了" is not the product破).
    rest = _PACKAGING_DAMAGE.sub(" ", _PACKAGING_INTACT.sub(" ", text))
    product = _PRODUCT_DAMAGE.search(rest)
    if product and _PRODUCT_INTACT.search(text):
        product = None
    if product:
        return "product_damage", product.group(0)
    if packaging:
        return "packaging_damage", packaging.group(0)
    return None, None


def text_category(text: str) -> tuple[str | None, str | None]:
    """The likeliest category the words name, and the cue."""
    if food := FOOD_SAFETY.search(text):
        return "food_safety", food.group(0)
    kind, cue = damage_kind(text)
    if kind is not None:
        return kind, cue
    for category, pattern in _CATEGORY_CUES:
        match = pattern.search(text)
        if match:
            return category, match.group(0)
    return None, None


def classify(
    *,
    text: str,
    intents: Sequence[str] = (),
    declared_type: TicketType | None = None,
    reason: str | None = None,
) -> Classification:
    """Type and category. A type the dialogue declared (it ran the flow) is kept; the category
    comes from the words first, then the reason preset; intents decide the type otherwise
    (the most recent after-sales intent wins)."""
    cues: list[str] = []
    category, cue = text_category(text)
    if category is not None and cue:
        cues.append(f"text:{cue}")
    if reason in ("破损", "damage"):
        # The reason preset says "damaged"; only the words say what was damaged.
        if category not in ("product_damage", "packaging_damage"):
            category = "product_damage"
            cues.append(f"reason:{reason}")
    elif category is None and reason in _REASON_CATEGORIES:
        category = _REASON_CATEGORIES[reason]
        cues.append(f"reason:{reason}")
    if reason == "food_safety" and category != "food_safety":
        category = "food_safety"
        cues.append("reason:food_safety")

    ticket_type = declared_type
    confidence = 0.9 if declared_type is not None else 0.0
    if declared_type is not None:
        cues.insert(0, f"declared:{declared_type.value}")
    if ticket_type is None:
        for intent in reversed(intents):
            if intent in INTENT_TYPES:
                ticket_type = INTENT_TYPES[intent]
                cues.append(f"intent:{intent}")
                confidence = 0.8
                break
    if ticket_type is None and category is not None:
        ticket_type = _CATEGORY_TYPES.get(category)
        confidence = 0.6
    if ticket_type is None:
        ticket_type, confidence = TicketType.GENERAL, 0.4
    if category == "food_safety" and ticket_type is TicketType.GENERAL:
        ticket_type = TicketType.COMPLAINT
    if category is None:
        confidence = min(confidence, 0.7)
    return Classification(ticket_type, category or "other", confidence, tuple(cues))
