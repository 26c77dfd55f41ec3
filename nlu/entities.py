"""Entities from normalised text, with normalised values: digits, ISO dates, preset reasons.

Rules rather than a learned extractor: the values must be exact (an order id either matches or
not), the rules are cheap, and they read the digits :mod:`nlu.numerals` leaves. Offsets refer to
the normalised text. Knows nothing of intents, Rasa or the store.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import textpatterns

EXTRACTOR = "AfterSalesRules"

REASONS = ("破损", "质量问题", "尺码不符", "发错货", "少件", "七天无理由", "描述不符", "过期变质")
"""The preset return/claim reasons; OCR and the backoffice use the same list."""

_REASON_CUES: tuple[tuple[str, tuple[str, ...]], ...] = (
    # Checked in this order: the more specific cue first (发霉 before 坏了).
    ("过期变质", ("过期", "变质", "发霉", "霉了", "馊了", "臭了", "腐烂", "烂掉", "坏掉了", "不新鲜",
              "expired", "rotten", "spoil", "mou?ldy")),
    ("描述不符", ("描述不符", "与描述", "和描述", "跟描述", "不符合描述", "和图片不", "跟图片不", "与图片不",
              "图片不一样", "色差", "货不对板", "与页面不符", "not as described")),
    ("发错货", ("发错", "寄错", "错发", "发成了", "发成", "不是我买的", "不是我要的", "送错", "wrong item",
             "wrong product", "wrong model", "wrong colou?r", "wrong one", "sent the wrong")),
    ("尺码不符", ("尺码", "尺寸不", "码数", "码.{0,2}[大小]了", "买[大小]了", "太大了", "太小了", "偏大", "偏小",
              "不合身", "穿不下", "穿不了", "不对码", "不对身", "唔啱身", "著唔落", "着唔落", "细咗", "大了一码",
              "小了一码", "wrong size", "too (?:small|big|large)",
              "doesn'?t fit")),
    ("少件", ("少件", "少了", "少发", "漏发", "漏寄", "漏了", "缺件", "缺了", "少一", "没有赠品", "赠品没",
            "没收到赠品", "missing", "short")),
    ("破损", ("破损", "破了", "碎", "摔坏", "压坏", "压扁", "压瘪", "碰坏", "磕坏", "裂了", "裂开", "烂了", "全烂",
            "凹了", "变形", "漏液", "漏水", "洒了", "broken", "damaged", "cracked", "smashed", "crushed")),
    ("七天无理由", ("七天无理由", "7天无理由", "无理由", "不想要了", "不喜欢", "拍错了", "买错了", "不需要了", "不要了",
               "不合心意", "唔啱心水", "不对心水", "不啱心水", "不合心水",
               "不满意", "不好看", "难看", "用不上", "没用了",
               "changed my mind", "don'?t (?:really )?(?:want|need|like) (?:it|them|this|the)", "no longer need",
               "not needed", "no reason", "(?:barely|never|hardly) used")),
    ("质量问题", ("质量", "坏了", "坏的", "就漏", "会漏", "漏得", "不能用", "用不了",
              "开不了机", "不工作", "没声音", "没有声音", "没反应", "不亮",
              "充不进电", "瑕疵", "掉色", "起球", "开线", "脱胶", "故障", "defective", "faulty", "doesn'?t work",
              "not working", "stopped working", "quality")),
)  # fmt: skip
_REASON_PATTERNS = tuple(
    (reason, textpatterns.compile("|".join(cues), textpatterns.IGNORECASE)) for reason, cues in _REASON_CUES
)

# Digits beside a number, or a decimal point, make it part of something else; a full stop after it does not.
_PHONE = textpatterns.compile(r"(?<!\d)(?<!\d\.)(?:\+?86[ -]?)?(1[3-9]\d{9})(?!\d|\.\d)")
_LONG_NUMBER = textpatterns.compile(r"(?<!\d)(?<!\d\.)\d{10,20}(?!\d|\.\d)")
_ORDER_CUE = textpatterns.compile(r"(?:订单|单号|order|编号|号码是?)[^\d]{0,6}$", textpatterns.IGNORECASE)
_TAX_CUE = textpatterns.compile(
    r"(?:税号|稅號|税务登记号|纳税人识别号|识别号|tax\s*(?:id|no\.?|number)|vat)[^\d]{0,4}$", textpatterns.IGNORECASE
)
_PHONE_CUE = textpatterns.compile(r"(?:手机|电话|号码|联系方式|phone|mobile|tel)[^\d]{0,6}$", textpatterns.IGNORECASE)

_SKU = textpatterns.compile(r"(?<![A-Za-z0-9])(SKU[-_ ]?[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*)", textpatterns.IGNORECASE)
_SKU_PREFIX = textpatterns.compile(r"^SKU[-_ ]?", textpatterns.IGNORECASE)
_SKU_AFTER_CUE = textpatterns.compile(r"(?:货号|商品编码|商品编号|编码)\s*[:是为]?\s*([A-Za-z0-9][A-Za-z0-9-]{2,})")

_QUANTITY = textpatterns.compile(
    r"(?<![\d.])(\d{1,4})\s*(?:件|个|只|双|盒|瓶|包|箱|台|条|套|份|袋|罐|张|支|部|把|顶|副|本|桶|杯"
    r"|pcs|pieces?|items?|boxes|box|pairs?|bottles?)(?![\d])",
    textpatterns.IGNORECASE,
)
_AMOUNT = textpatterns.compile(
    r"(?:(?:¥|￥|rmb|cny)\s*(?P<pre>\d+(?:\.\d{1,2})?))"
    r"|(?:(?<![\d.])(?P<num>\d++(?:\.\d{1,2})?)\s*(?:块钱|块|元|蚊|rmb|yuan|cny|dollars?|bucks)(?:(?P<jiao>\d)(?:毛|角)?)?)",
    textpatterns.IGNORECASE,
)

_PRICE_TALK = textpatterns.compile(r"差价|降价|价保|便宜了|降了|价格|price", textpatterns.IGNORECASE)
_BARE_PRICE = textpatterns.compile(r"(?<![\d.])\d{1,5}(?:\.\d{1,2})?(?![\d.])")

_WEEKDAY = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6, "末": 5}
_EN_WEEKDAY = {"monday": 0, "tuesday": 1, "wednesday": 2, "thursday": 3, "friday": 4, "saturday": 5, "sunday": 6}
_RELATIVE_DAYS = {"今天": 0, "明天": 1, "后天": 2, "大后天": 3, "today": 0, "tonight": 0, "tomorrow": 1}
_RELATIVE_DAY = textpatterns.compile(
    r"大后天|后天|明天|今天|day after tomorrow|tomorrow|today|tonight", textpatterns.IGNORECASE
)
_CN_WEEKDAY = textpatterns.compile(r"(下下|下个|下|这个|这|本)?(?:周|星期|礼拜)([一二三四五六日天末])")
_EN_WEEKDAY_RE = textpatterns.compile(
    r"(next |this )?(monday|tuesday|wednesday|thursday|friday|saturday|sunday)", textpatterns.IGNORECASE
)
_MONTH_DAY = textpatterns.compile(r"(?:(\d{4})年)?(\d{1,2})月(\d{1,2})(?:号|日)?")
_ISO_DATE = textpatterns.compile(r"(?<!\d)(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?!\d)")
_SLASH_DATE = textpatterns.compile(r"(?<![\d.])(\d{1,2})/(\d{1,2})(?![\d/])")
_HOUSE_NUMBER_AFTER = tuple("路街道巷弄村栋幢楼座室区")
_DAY_ONLY = textpatterns.compile(r"(?<![\d月.])(\d{1,2})(?:号|日)(?!\d)")

TIME_SLOTS = {
    "morning": "09:00-12:00",
    "noon": "12:00-14:00",
    "afternoon": "14:00-18:00",
    "evening": "18:00-21:00",
}
_SLOT_WORDS = textpatterns.compile(
    r"(?P<morning>上午|早上|早晨|清早|一早|上昼|morning)"
    r"|(?P<noon>中午|noon|lunch ?time)"
    r"|(?P<afternoon>下午|午后|afternoon)"
    r"|(?P<evening>晚上|傍晚|夜里|夜间|今晚|明晚|evening|tonight)",
    textpatterns.IGNORECASE,
)
_HOUR_RANGE = textpatterns.compile(
    r"(上午|下午|晚上|中午)?(\d{1,2})(?:点|:00)(?:半)?\s*(?:到|至|-|~)\s*(\d{1,2})(?:点|:00)?"
)

_ADDRESS_CUE = textpatterns.compile(
    r"(?:改成|改为|改到|换成|寄到|送到|送去|寄去|发到|邮到|地址是|新地址是?|地址改一下|收货地址是?|地址[:：]"
    r"|change (?:the )?address to|ship (?:it )?to|send (?:it )?to|deliver (?:it )?to|new address is|address is)"
    r"\s*[:：]?\s*",
    textpatterns.IGNORECASE,
)
_ADDRESS_MARKER = textpatterns.compile(
    r"[省市区县镇乡村路街道巷弄号楼栋幢室]|单元|小区|大厦|公寓"
    r"|(?<!\d)\d++\s+\w++\s+(?:street|st|road|rd|avenue|ave|lane|ln)\b",
    textpatterns.IGNORECASE,
)
# Province or city, district, street: each part bounded and atomic (no backtracking into a part
# once it matched), so a run of 市 or 区 costs a few steps per character, not a cubic search.
_BARE_ADDRESS = textpatterns.compile(
    r"(?>[\u4e00-\u9fff]{2,8}?(?:省|自治区|市))"
    r"(?>[\u4e00-\u9fff\d\s-]{0,20}?(?:区|县|市))"
    r"(?>[\u4e00-\u9fff\w\s-]{0,30}?(?:路|街|道|巷|弄|号|村|镇))"
    r"[^,.!?;，。！？；]*"
)
_ADDRESS_END = textpatterns.compile(r"[,!?;，。！？；]|\.(?!\d)|谢谢|麻烦|订单|单号|可以吗|行吗|好吗|可不可以|能不能")
_ENGLISH_ADDRESS_END = textpatterns.compile(
    r"[!?;。！？；]|\.(?:\s|$)|\b(?:thanks|thank you|please|pls)\b", textpatterns.IGNORECASE
)
_ADDRESS_LEAD = textpatterns.compile(
    r"^(?:(?:给我|帮我|请|麻烦)?(?:改成|改为|改到|换成|寄到|送到|发到|写成|写)\s*)*"
    r"(?:(?:下面这个|这个|下面|如下|以下)\s*[:：]?\s*)?"
)  # "改成这个：上海市…" (迭个 is normalised to 这个)
_ADDRESS_TAIL_WORDS = ("就可以", "就行", "就好", "就中", "去", "来", "吗", "呢", "呗", "啊", "呀", "吧", "了", "哈")


@dataclass(frozen=True, slots=True)
class Extracted:
    entity: str
    value: Any
    start: int
    end: int

    def as_rasa(self) -> dict[str, Any]:
        return {
            "entity": self.entity,
            "value": self.value,
            "start": self.start,
            "end": self.end,
            "extractor": EXTRACTOR,
            "confidence_entity": 1.0,
        }


def extract_entities(text: str, today: date) -> list[Extracted]:
    """All entities in normalised ``text``; relative dates resolve against ``today``."""
    found = [
        *_numbers(text),
        *_skus(text),
        *_quantities(text),
        *_amounts(text),
        *_dates(text, today),
        *_time_slots(text),
        *_reason(text),
        *_address(text),
    ]
    return sorted(found, key=lambda e: (e.start, e.entity))


def _numbers(text: str) -> Iterator[Extracted]:
    """Order ids and phone numbers; an 11-digit mobile number is a phone unless an order cue precedes it."""
    taken: list[tuple[int, int]] = []
    for match in _PHONE.finditer(text):
        before = text[max(0, match.start() - 12) : match.start()]
        if _ORDER_CUE.search(before) and not _PHONE_CUE.search(before):
            continue
        taken.append((match.start(1), match.end(1)))
        yield Extracted("phone", match.group(1), match.start(1), match.end(1))
    for match in _LONG_NUMBER.finditer(text):
        if any(start <= match.start() < end for start, end in taken):
            continue
        if _TAX_CUE.search(text[max(0, match.start() - 12) : match.start()]):
            continue  # "税号330203198701234": a company's tax number, not an order
        yield Extracted("order_id", match.group(0), match.start(), match.end())


def _skus(text: str) -> Iterator[Extracted]:
    seen: set[int] = set()
    for match in _SKU.finditer(text):
        seen.add(match.start(1))
        value = _SKU_PREFIX.sub("SKU-", match.group(1).upper())
        yield Extracted("sku", value, match.start(1), match.end(1))
    for match in _SKU_AFTER_CUE.finditer(text):
        if match.start(1) not in seen:
            yield Extracted("sku", match.group(1).upper(), match.start(1), match.end(1))


def _quantities(text: str) -> Iterator[Extracted]:
    for match in _QUANTITY.finditer(text):
        yield Extracted("quantity", int(match.group(1)), match.start(), match.end())


def _amounts(text: str) -> Iterator[Extracted]:
    found = False
    for match in _AMOUNT.finditer(text):
        raw = match.group("pre") or match.group("num")
        value = float(raw)
        if match.group("jiao"):
            value += int(match.group("jiao")) / 10
        found = True
        yield Extracted("amount", _number(value), match.start(), match.end())
    if not found and _PRICE_TALK.search(text):
        # "买的时候199现在159了": in price-protection talk a bare number is a price.
        for match in _BARE_PRICE.finditer(text):
            yield Extracted("amount", _number(float(match.group(0))), match.start(), match.end())


def _number(value: float) -> int | float:
    return int(value) if value.is_integer() else round(value, 2)


def _dates(text: str, today: date) -> Iterator[Extracted]:
    spans: list[tuple[int, int]] = []

    def fresh(start: int, end: int) -> bool:
        if any(s < end and start < e for s, e in spans):
            return False
        spans.append((start, end))
        return True

    for match in _ISO_DATE.finditer(text):
        day = _safe_date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
        if day and fresh(match.start(), match.end()):
            yield Extracted("date", day.isoformat(), match.start(), match.end())
    for match in _MONTH_DAY.finditer(text):
        year = int(match.group(1)) if match.group(1) else None
        day = _month_day(year, int(match.group(2)), int(match.group(3)), today)
        if day and fresh(match.start(), match.end()):
            yield Extracted("date", day.isoformat(), match.start(), match.end())
    for match in _RELATIVE_DAY.finditer(text):
        word = match.group(0).lower()
        offset = 2 if word == "day after tomorrow" else _RELATIVE_DAYS[word]
        if fresh(match.start(), match.end()):
            yield Extracted("date", (today + timedelta(days=offset)).isoformat(), match.start(), match.end())
    for match in _CN_WEEKDAY.finditer(text):
        weekday = _WEEKDAY[match.group(2)]
        next_week = match.group(1) in ("下", "下个")
        if match.group(1) == "下下":
            day = _weekday_in_week(today, weekday, weeks_ahead=2)
        elif next_week:
            day = _weekday_in_week(today, weekday, weeks_ahead=1)
        else:
            day = _next_weekday(today, weekday)
        if fresh(match.start(), match.end()):
            yield Extracted("date", day.isoformat(), match.start(), match.end())
    for match in _EN_WEEKDAY_RE.finditer(text):
        weekday = _EN_WEEKDAY[match.group(2).lower()]
        prefix = (match.group(1) or "").strip().lower()
        day = _weekday_in_week(today, weekday, 1) if prefix == "next" else _next_weekday(today, weekday)
        if fresh(match.start(), match.end()):
            yield Extracted("date", day.isoformat(), match.start(), match.end())
    for match in _SLASH_DATE.finditer(text):
        day = _month_day(None, int(match.group(1)), int(match.group(2)), today)
        if day and fresh(match.start(), match.end()):
            yield Extracted("date", day.isoformat(), match.start(), match.end())
    for match in _DAY_ONLY.finditer(text):
        number = int(match.group(1))
        if text[: match.start()].rstrip().endswith(_HOUSE_NUMBER_AFTER):
            continue  # 科技园路1号, 3栋2号: a house number, not the 1st of the month
        if not 1 <= number <= 31 or not fresh(match.start(), match.end()):
            continue
        month_day = _safe_date(today.year, today.month, number)
        if month_day is not None and month_day < today:  # "25号" after the 25th means next month
            month = today.month % 12 + 1
            month_day = _safe_date(today.year + (month == 1), month, number)
        if month_day is not None:
            yield Extracted("date", month_day.isoformat(), match.start(), match.end())


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _month_day(year: int | None, month: int, day: int, today: date) -> date | None:
    """A month and day without a year: the next such date, not more than ~2 months in the past."""
    if year is not None:
        return _safe_date(year, month, day)
    candidate = _safe_date(today.year, month, day)
    if candidate is not None and (today - candidate).days > 60:
        candidate = _safe_date(today.year + 1, month, day)
    return candidate


def _next_weekday(today: date, weekday: int) -> date:
    """周六 on a Friday is tomorrow; 周五 on a Friday is today."""
    return today + timedelta(days=(weekday - today.weekday()) % 7)


def _weekday_in_week(today: date, weekday: int, weeks_ahead: int) -> date:
    """下周一: that weekday in the calendar week after this one (weeks start on Monday)."""
    monday = today - timedelta(days=today.weekday())
    return monday + timedelta(weeks=weeks_ahead, days=weekday)


def _time_slots(text: str) -> Iterator[Extracted]:
    ranges = list(_HOUR_RANGE.finditer(text))
    for match in ranges:
        first, last = int(match.group(2)), int(match.group(3))
        if match.group(1) in ("下午", "晚上") or (match.group(1) is None and last <= 7):
            first, last = first % 12 + 12, last % 12 + 12
        if 0 <= first < last <= 24:
            yield Extracted("time_slot", f"{first:02d}:00-{last:02d}:00", match.start(), match.end())
    if ranges:
        return
    # Every slot word: in "今天下午送, 我不在, 能改成晚上吗" the dialogue takes the last one.
    for match in _SLOT_WORDS.finditer(text):
        slot = next(name for name, value in match.groupdict().items() if value)
        yield Extracted("time_slot", TIME_SLOTS[slot], match.start(), match.end())


def _reason(text: str) -> Iterator[Extracted]:
    best: Extracted | None = None
    for reason, pattern in _REASON_PATTERNS:
        match = pattern.search(text)
        if match and (best is None or match.start() < best.start):
            best = Extracted("reason", reason, match.start(), match.end())
    if best is not None:
        yield best


def _address(text: str) -> Iterator[Extracted]:
    # The last cue wins: in "收货地址啊我填错了改到杭州市…" the address follows 改到.
    for cue in reversed(list(_ADDRESS_CUE.finditer(text))):
        start = cue.end()
        english = text[start : start + 1].isascii()
        end_match = (_ENGLISH_ADDRESS_END if english else _ADDRESS_END).search(text, start)
        end = end_match.start() if end_match else len(text)
        candidate = text[start:end].strip()
        lead = _ADDRESS_LEAD.match(candidate)
        if lead:
            candidate = candidate[lead.end() :]
        candidate = _without_tail(candidate).strip(" ,")
        if len(candidate) >= 4 and _ADDRESS_MARKER.search(candidate) and not _RELATIVE_DAY.fullmatch(candidate):
            offset = text.index(candidate, start)
            yield Extracted("address", candidate, offset, offset + len(candidate))
            return
    bare = _BARE_ADDRESS.search(text)
    if bare is not None:
        candidate = _without_tail(bare.group(0)).strip()
        yield Extracted("address", candidate, bare.start(), bare.start() + len(candidate))


def _without_tail(candidate: str) -> str:
    """The address without trailing particles ("…398号就行了吧"), stripped word by word from the end
    (a ``(?:…)+$`` pattern retries from every position: quadratic on a long run of them)."""
    end = len(candidate)
    while end:
        word = next((w for w in _ADDRESS_TAIL_WORDS if candidate.endswith(w, 0, end)), None)
        if word is None:
            break
        end -= len(word)
    return candidate[:end]
