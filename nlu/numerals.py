"""Chinese numerals to Arabic digits, only where they form ids, phone numbers, quantities, amounts or times.

Two spoken forms are converted:

* digit strings read one digit at a time (二零二六幺幺, 幺三八洞洞…), three digits or more, as
  callers read order and phone numbers (幺 = 1, 两 = 2, 洞 = 0);
* positional numbers with 十/百/千/万 (三百五十, 十一月二十五号, 一千二), and a lone digit only
  when a measure word follows (两件, 三天, 五块) — so 一下, 一样, 一点点 stay words.

Knows nothing of intents or entities; :mod:`nlu.entities` reads the digits this leaves behind.
"""

from __future__ import annotations

import textpatterns

DIGITS = {
    "零": 0, "〇": 0, "洞": 0, "一": 1, "幺": 1, "二": 2, "两": 2, "三": 3, "四": 4,
    "五": 5, "六": 6, "七": 7, "八": 8, "九": 9,
}  # fmt: skip
UNITS = {"十": 10, "百": 100, "千": 1000}
BIG_UNITS = {"万": 10_000, "亿": 100_000_000}

MEASURE_WORDS = frozenset(
    "件个只双盒瓶包箱台条套份斤克元块毛角号日月天周年岁次单位张支袋罐桶杯部笔把顶副本块台层楼栋幢室小分秒折倍公米里"
)
"""A lone digit followed by one of these is a number (两件, 三天); 点 is handled with time words."""
TIME_WORDS = ("上午", "下午", "早上", "晚上", "中午", "凌晨", "傍晚", "明天", "今天", "后天")

_NUMERAL_RUN = textpatterns.compile(r"[零〇洞一幺二两三四五六七八九十百千万亿\d]+")
_DIGIT_SEPARATORS = textpatterns.compile(r"[ \-]")
_SPACED_DIGITS = textpatterns.compile(r"(?<![\d.])\d{3,}(?:[ \-]\d{3,})+(?![\d.])")


def digits_for_chinese_numerals(text: str) -> str:
    """Replace spoken Chinese numerals with digits where they are numbers, leaving words alone."""
    out: list[str] = []
    last = 0
    for match in _NUMERAL_RUN.finditer(text):
        run = match.group(0)
        converted = _convert_run(run, text, match.start(), match.end())
        if converted is not None:
            out.append(text[last : match.start()])
            out.append(converted)
            last = match.end()
    out.append(text[last:])
    return _join_spaced_digit_groups("".join(out))


def _convert_run(run: str, text: str, start: int, end: int) -> str | None:
    if run.isascii():
        return None  # already digits
    following = text[end : end + 1]
    has_units = any(c in UNITS or c in BIG_UNITS for c in run)
    if not has_units:
        if len(run) >= 3:
            return "".join(str(DIGITS[c]) if c in DIGITS else c for c in run)
        if len(run) == 1 and following and following in MEASURE_WORDS:
            return str(DIGITS[run])
        if len(run) == 1 and text[start - 1 : start] in ("块", "元"):
            return str(DIGITS[run])  # 三十八块五 = 38.5
        if len(run) == 1 and following == "点" and text[max(0, start - 2) : start] in TIME_WORDS:
            return str(DIGITS[run])
        return None
    if run == "十" and following == "分" and text[end + 1 : end + 2] != "钟":
        return None  # 十分满意: "very", not ten
    value = positional_value(run)
    return None if value is None else str(value)


def positional_value(run: str) -> int | None:
    """Value of 三百五十, 十一, 两万五, 一千二 (colloquial: 一千二 = 1200); None if ill-formed (万一, 千万)."""
    if any(c.isdigit() for c in run):
        return None
    if run[0] in BIG_UNITS or (run[0] in UNITS and run[0] != "十"):
        return None  # 万一 "in case", 千万 "by all means"
    total = 0  # completed 万/亿 groups
    section = 0  # value below the current big unit
    digit: int | None = None
    last_unit = 1
    zero_seen = False  # 三百零五 = 305, but 三百五 = 350
    for char in run:
        if char in DIGITS:
            if digit is not None and DIGITS[char] != 0 and digit != 0:
                return None  # two digits in a row inside a positional number
            zero_seen = zero_seen or DIGITS[char] == 0
            digit = DIGITS[char]
        elif char in UNITS:
            unit = UNITS[char]
            section += (1 if digit is None else digit) * unit
            digit, last_unit, zero_seen = None, unit, False
        else:
            unit = BIG_UNITS[char]
            section += digit or 0
            total += section * unit
            section, digit, last_unit, zero_seen = 0, None, unit, False
    if digit:
        # 一千二 = 1200, 三百五 = 350, 两万五 = 25000: a trailing digit is one unit below the last.
        section += digit * (last_unit // 10) if last_unit >= 100 and not zero_seen else digit
    return total + section


def _join_spaced_digit_groups(text: str) -> str:
    """138 0013 8000 or 138-0013-8000 → 13800138000 (dates like 2026-11-25 have short groups and stay)."""
    return _SPACED_DIGITS.sub(lambda m: _DIGIT_SEPARATORS.sub("", m.group(0)), text)
