"""Field extraction: from recognised lines (and barcodes) to order number, SKU, quantity, reason,
customer id and return date, each with a confidence and the doubts about it.

Owns the label synonyms (订单号/订单编号/原订单号 …), the labels that must *not* be taken for
a field (开票日期 is not a return date), how a label finds its value in the layouts slips use
(``label：value`` on one line, the cell to the right in a ruled form, the cell below in a header
table), value parsing (OCR look-alike characters in numbers, Chinese numerals, date formats)
and the configurable list of return reasons.

Must not know about the shop's orders (see :mod:`media_ocr.validation`) or about image files.
"""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

import textpatterns
from media_ocr.model import FIELD_NAMES, Barcode, Box, FieldReading, FieldValue, TextLine

DEFAULT_REASONS = ("破损", "质量问题", "尺码不符", "发错货", "少件", "七天无理由", "描述不符", "过期变质")
"""Return reasons a slip may give; anything else is sent to a human."""

FIELD_LABELS: dict[str, tuple[str, ...]] = {
    "order_id": ("订单号", "订单编号", "原订单号", "订单号码", "原订单编号", "订单ID", "OrderNo", "OrderID", "Order"),
    "sku": ("商品SKU", "商品编码", "货号", "SKU", "商品货号", "商品编号", "产品编码", "SKU编码", "Item"),
    "quantity": ("退货数量", "数量", "退货件数", "件数", "退回数量", "申请数量", "Qty", "Quantity"),
    "reason": ("退货原因", "原因", "退货理由", "退款原因", "售后原因", "Reason"),
    "customer_id": ("客户ID", "会员ID", "客户编号", "会员编号", "客户号", "会员号", "用户ID", "CustomerID"),
    "return_date": ("退货日期", "申请日期", "日期", "退货时间", "申请时间", "Date"),
}
"""Printed labels for each field (compared after NFKC and without spaces; ASCII case-insensitively)."""

OTHER_LABELS = (
    "开票日期",
    "下单日期",
    "付款日期",
    "发货日期",
    "发票号码",
    "发票代码",
    "运单号",
    "快递单号",
    "物流单号",
    "商品名称",
    "规格",
    "单价",
    "金额",
    "合计金额",
    "合计",
    "联系人",
    "姓名",
    "寄件人",
    "收件人",
    "联系电话",
    "手机",
    "电话",
    "地址",
    "寄件地址",
    "取件地址",
    "收货地址",
    "购买方名称",
    "销售方",
    "备注",
)
"""Labels of things that are not fields: they end a value and are never taken for a field label."""

SEPARATORS = ":：;；|,，.。-—_=· "

# Characters OCR confuses with digits, by the digit they stand for (only used in numeric places).
_DIGIT_LOOKALIKES = str.maketrans(
    {"O": "0", "o": "0", "D": "0", "Q": "0", "I": "1", "l": "1", "|": "1", "i": "1", "!": "1", "L": "1",
     "Z": "2", "z": "2", "S": "5", "s": "5", "B": "8", "g": "9", "q": "9", "b": "6", "G": "6", "T": "7"}
)  # fmt: skip
_LOOKALIKE_CHARS = set("OoDQIl|i!LZzSsBgqbGT")
_CHINESE_DIGITS = {"〇": 0, "零": 0, "○": 0, "O": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6,
                   "七": 7, "八": 8, "九": 9}  # fmt: skip


@dataclass(frozen=True, slots=True)
class FieldConfig:
    """What the extractor accepts; every part can be changed per shop."""

    reasons: tuple[str, ...] = DEFAULT_REASONS
    labels: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(FIELD_LABELS))
    other_labels: tuple[str, ...] = OTHER_LABELS
    order_id_pattern: str = r"\d{6,24}"
    sku_pattern: str = r"[A-Z0-9][A-Z0-9._/-]{2,39}"
    customer_id_pattern: str = r"[A-Z]{0,4}-?\d{4,16}"
    max_quantity: int = 999


# -- text with per-character confidence ----------------------------------------------------


@dataclass(slots=True)
class Span:
    """Normalised text (NFKC, no spaces) with one confidence per character and its place."""

    text: str
    confidences: list[float]
    box: Box
    second: Span | None = None
    """Another engine's reading of the whole line, when there is one."""
    origin: int | None = None
    """Index of the recognised line this text comes from."""

    @classmethod
    def of(cls, line: TextLine, origin: int | None = None) -> Span:
        """Spaces are dropped (OCR puts them between Chinese characters at random) except one
        between two Latin letters or digits, where it separates words (``SKU SKU-TEA-500``)."""
        text: list[str] = []
        confidences: list[float] = []
        pending_space = False
        for character, confidence in zip(line.text, line.confidences, strict=True):
            for piece in unicodedata.normalize("NFKC", character):
                if piece.isspace():
                    pending_space = True
                    continue
                if pending_space and text and _is_word_character(text[-1]) and _is_word_character(piece):
                    text.append(" ")
                    confidences.append(1.0)
                pending_space = False
                text.append(piece)
                confidences.append(confidence)
        second = cls.of(line.second_opinion) if line.second_opinion is not None else None
        return cls("".join(text), confidences, line.box, second, origin)

    def part(self, start: int, end: int) -> Span:
        box = self.box.slice(start, end, len(self.text))
        return Span(self.text[start:end], self.confidences[start:end], box, origin=self.origin)

    def confidence(self) -> float:
        return min(self.confidences, default=0.0)


@dataclass(frozen=True, slots=True)
class LabelHit:
    field: str | None
    """The field this label names; None for a label of something else (开票日期, 地址 …)."""
    start: int
    end: int
    exact: bool


_LABEL_LOOKALIKES = str.maketrans({"1": "i", "l": "i", "|": "i", "!": "i", "0": "o"})


def _ascii_fold(text: str) -> str:
    """Latin letters compared case-insensitively and with look-alikes merged (会员ID read as
    会员1D), one character for one, so positions stay as they are."""
    return "".join(c.lower() if c.isascii() else c for c in text).translate(_LABEL_LOOKALIKES)


def _is_word_character(character: str) -> bool:
    return character.isascii() and character.isalnum()


class LabelFinder:
    """Finds field labels (and other labels) in a line, longest first, left to right."""

    def __init__(self, config: FieldConfig) -> None:
        entries: list[tuple[str, str | None]] = [
            (_ascii_fold(unicodedata.normalize("NFKC", label).replace(" ", "")), name)
            for name, labels in config.labels.items()
            for label in labels
        ]
        entries += [(_ascii_fold(unicodedata.normalize("NFKC", label)), None) for label in config.other_labels]
        self.entries = sorted(entries, key=lambda e: -len(e[0]))

    def find(self, text: str) -> list[LabelHit]:
        hits: list[LabelHit] = []
        position = 0
        folded = _ascii_fold(text)
        while position < len(text):
            hit = self._exact(folded, position) or self._fuzzy(folded, position)
            if hit is None:
                position += 1
                continue
            hits.append(hit)
            position = hit.end
        return hits

    def _exact(self, text: str, position: int) -> LabelHit | None:
        for label, name in self.entries:
            if text.startswith(label, position) and _label_boundary(text, position, position + len(label), label):
                return LabelHit(name, position, position + len(label), exact=True)
        return None

    def _fuzzy(self, text: str, position: int) -> LabelHit | None:
        """One character misread in a label of three or more CJK characters (订单号码 → 订单号权);
        in a two-character label only when the label is alone or followed by a colon; or one
        character dropped from a label of four or more when a colon follows (会员ID → 会员D：)."""
        for label, name in self.entries:
            dropped = self._dropped(text, position, label)
            if dropped is not None:
                return LabelHit(name, position, dropped, exact=False)
            size = len(label)
            window = text[position : position + size]
            if label.isascii() or len(window) != size or not _is_cjk(window[0]):
                continue
            mismatched = [(a, b) for a, b in zip(window, label, strict=True) if a != b]
            # One Chinese character misread as another; Latin letters never stand in for one.
            if len(mismatched) != 1 or not all(_is_cjk(a) and _is_cjk(b) for a, b in mismatched):
                continue
            alone = position == 0 and (position + size == len(text) or text[position + size] in ":：")
            if size >= 3 or alone:
                return LabelHit(name, position, position + size, exact=False)
        return None

    @staticmethod
    def _dropped(text: str, position: int, label: str) -> int | None:
        """End of ``label`` read with one character missing and a colon after it, else None."""
        size = len(label) - 1
        if size < 3 or not _is_cjk(label[0]):
            return None
        end = position + size
        if end >= len(text) or text[end] not in ":：":
            return None
        window = text[position:end]
        if any(label[:i] + label[i + 1 :] == window for i in range(len(label))):
            return end
        return None


def _label_boundary(text: str, start: int, end: int, label: str) -> bool:
    """ASCII labels (SKU, Qty) must stand alone: ``SKU-TEA-500`` is a value, not a label."""
    if not label.isascii():
        return True
    before = text[start - 1] if start > 0 else " "
    after = text[end] if end < len(text) else " "
    return not _is_word_character(before) and not (_is_word_character(after) or after in "-_")


def _is_cjk(character: str) -> bool:
    return "\u4e00" <= character <= "\u9fff"


# -- value parsing -------------------------------------------------------------------------


@dataclass(slots=True)
class Parsed:
    value: FieldValue
    confidence: float
    raw: str
    doubts: list[str] = field(default_factory=list)
    alternatives: list[FieldValue] = field(default_factory=list)


def _strip_separators(span: Span) -> Span:
    start, end = 0, len(span.text)
    while start < end and span.text[start] in SEPARATORS:
        start += 1
    while end > start and span.text[end - 1] in SEPARATORS:
        end -= 1
    return span.part(start, end)


def _numeric_run(span: Span, minimum_digits: int) -> tuple[str, list[float], int, int] | None:
    """The first run of digits (look-alikes allowed inside it) with at least ``minimum_digits`` real digits."""
    text = span.text
    position = 0
    while position < len(text):
        if not (text[position].isdigit() or text[position] in _LOOKALIKE_CHARS):
            position += 1
            continue
        end = position
        while end < len(text) and (
            text[end].isdigit()
            or text[end] in _LOOKALIKE_CHARS
            or (text[end] == " " and end + 1 < len(text) and text[end + 1].isdigit())  # 2026 1115 0001
        ):
            end += 1
        # Trim look-alikes at the edges: letters next to a number are usually letters (VIP123).
        start = position
        while start < end and not text[start].isdigit():
            start += 1
        stop = end
        while stop > start and not text[stop - 1].isdigit():
            stop -= 1
        run = text[start:stop]
        if sum(c.isdigit() for c in run) >= minimum_digits:
            confidences = [
                c if ch.isdigit() else c * 0.5  # a look-alike read as a digit is a guess
                for ch, c in zip(run, span.confidences[start:stop], strict=True)
                if ch != " "
            ]
            return run.replace(" ", "").translate(_DIGIT_LOOKALIKES), confidences, start, stop
        position = end
    return None


_DIGITS = textpatterns.compile(r"\d+")
_CHINESE_NUMBER = textpatterns.compile(r"[一二两三四五六七八九十]+")
_ONE_LOOKALIKE = textpatterns.compile(r"[Il|i!]")
_CUSTOMER_ID = textpatterns.compile(r"([A-Z]{0,4})([- ]?)([0-9OQDILZSBG|]{4,16})")
_KEYED_ORDER_ID = textpatterns.compile(r"(?:order[_ ]?(?:id|no)?|订单号?)[=:：]?\s*(\d+)", textpatterns.IGNORECASE)


def parse_order_id(span: Span, config: FieldConfig) -> Parsed | None:
    found = _numeric_run(span, 6)
    if found is None:
        return None
    digits, confidences, _, _ = found
    doubts = []
    if not textpatterns.compile(config.order_id_pattern).fullmatch(digits):
        doubts.append(f"order_id: {len(digits)} digits do not look like an order number")
    return Parsed(digits, min(confidences), digits, doubts)


def parse_sku(span: Span, config: FieldConfig) -> Parsed | None:
    text = span.text.upper()
    match = textpatterns.compile(config.sku_pattern).search(text)
    if match is None:
        return None
    value = match.group(0).rstrip("._/-")
    confidences = span.confidences[match.start() : match.start() + len(value)]
    return Parsed(value, min(confidences, default=0.0), value)


def parse_quantity(span: Span, config: FieldConfig) -> Parsed | None:
    text = span.text
    match = _DIGITS.search(text)
    if match is not None:
        number = int(match.group(0))
        confidence = min(span.confidences[match.start() : match.end()])
    else:
        chinese = _CHINESE_NUMBER.search(text)
        lookalike = _ONE_LOOKALIKE.fullmatch(text[:1]) if text else None
        if chinese is not None:
            number = _chinese_number(chinese.group(0))
            confidence = min(span.confidences[chinese.start() : chinese.end()])
        elif lookalike is not None and (len(text) == 1 or not text[1].isalnum()):
            number, confidence = 1, span.confidences[0] * 0.5
        else:
            return None
    if not 1 <= number <= config.max_quantity:
        return Parsed(number, confidence * 0.5, text, [f"quantity: {number} is not a plausible quantity"])
    return Parsed(number, confidence, text)


def _chinese_number(text: str) -> int:
    """一 … 九十九 (enough for quantities and dates)."""
    if "十" in text:
        tens, _, ones = text.partition("十")
        return (_CHINESE_DIGITS.get(tens, 1) if tens else 1) * 10 + (_CHINESE_DIGITS.get(ones, 0) if ones else 0)
    return int("".join(str(_CHINESE_DIGITS[c]) for c in text if c in _CHINESE_DIGITS) or "0")


def parse_reason(span: Span, config: FieldConfig) -> Parsed | None:
    text = "".join(c for c in span.text if c not in SEPARATORS)
    if not text:
        return None
    for reason in sorted(config.reasons, key=len, reverse=True):
        at = span.text.find(reason)
        if at >= 0:
            return Parsed(reason, min(span.confidences[at : at + len(reason)]), reason)
    # Closest preset by shared characters; a fuzzy match is never trusted on its own.
    scored = sorted(
        ((difflib.SequenceMatcher(None, text[: len(r) + 2], r).ratio(), r) for r in config.reasons), reverse=True
    )
    (best_score, best), (second_score, _) = scored[0], scored[1] if len(scored) > 1 else (0.0, "")
    if best_score >= 0.6 and best_score - second_score >= 0.2:
        confidence = min(span.confidence() * best_score, 0.7)
        return Parsed(best, confidence, text, [f"reason: read as “{text}”, taken for the preset “{best}”"])
    return Parsed(text, span.confidence() * 0.5, text, [f"reason: “{text}” is not one of the preset reasons"])


def parse_customer_id(span: Span, config: FieldConfig) -> Parsed | None:
    text = span.text.upper()
    match = _CUSTOMER_ID.search(text)
    if match is None:
        return None
    prefix, dash, number = match.groups()
    digits = number.translate(_DIGIT_LOOKALIKES)
    if not any(c.isdigit() for c in number):
        return None
    dash = dash.strip()
    value = prefix + dash + digits
    start = match.start()
    confidences = list(span.confidences[start : match.start(3)])
    confidences += [
        c if ch.isdigit() else c * 0.5
        for ch, c in zip(number, span.confidences[match.start(3) : match.end(3)], strict=True)
    ]
    doubts = (
        []
        if textpatterns.compile(config.customer_id_pattern).fullmatch(value)
        else [f"customer_id: “{value}” has an odd form"]
    )
    return Parsed(value, min(confidences), value, doubts)


_DATE_PATTERNS = (
    # 2026-11-20, 2026/11/20, 2026.11.20, 2026年11月20日, 2026 年 11 月 5 日
    textpatterns.compile(r"(?P<y>\d{4})[-/.年](?P<m>\d{1,2})[-/.月](?P<d>\d{1,2})日?"),
    # 20261120
    textpatterns.compile(r"(?<!\d)(?P<y>20\d{2})(?P<m>[01]\d)(?P<d>[0-3]\d)(?!\d)"),
    # 20/11/2026 or 11/20/2026 (which is which is decided below)
    textpatterns.compile(r"(?<!\d)(?P<a>\d{1,2})[-/.](?P<b>\d{1,2})[-/.](?P<y>\d{4})(?!\d)"),
)
_CHINESE_DATE = textpatterns.compile(
    r"(?P<y>[〇零○O一二三四五六七八九]{4})年(?P<m>[一二三四五六七八九十]{1,3})月(?P<d>[一二三四五六七八九十]{1,3})日"
)


def parse_date(span: Span, config: FieldConfig) -> Parsed | None:
    raw = span.text
    chinese = _CHINESE_DATE.search(raw)
    if chinese is not None:
        year = _chinese_number(chinese.group("y"))
        return _checked_date(year, _chinese_number(chinese.group("m")), _chinese_number(chinese.group("d")),
                             min(span.confidences[chinese.start() : chinese.end()]), raw, [])  # fmt: skip
    # Look-alikes only where a digit belongs (between digits and date separators).
    text = "".join(
        ch.translate(_DIGIT_LOOKALIKES) if ch in _LOOKALIKE_CHARS and _near_digit(raw, i) else ch
        for i, ch in enumerate(raw)
    )
    for number, pattern in enumerate(_DATE_PATTERNS):
        match = pattern.search(text)
        if match is None:
            continue
        confidences = [
            c * (0.5 if raw[i] != text[i] else 1.0)
            for i, c in enumerate(span.confidences[match.start() : match.end()], start=match.start())
        ]
        confidence = min(confidences)
        doubts: list[str] = []
        if number < 2:
            return _checked_date(int(match["y"]), int(match["m"]), int(match["d"]), confidence, raw, doubts)
        first, second = int(match["a"]), int(match["b"])
        if first > 12 >= second:
            day, month = first, second
        elif second > 12 >= first:
            month, day = first, second
        else:
            day, month = first, second
            doubts.append(f"return_date: “{match.group(0)}” could be day/month or month/day")
            confidence = min(confidence, 0.5)
        return _checked_date(int(match["y"]), month, day, confidence, raw, doubts)
    return None


def _near_digit(text: str, index: int) -> bool:
    neighbours = text[max(0, index - 1) : index] + text[index + 1 : index + 2]
    return any(c.isdigit() for c in neighbours)


def _checked_date(year: int, month: int, day: int, confidence: float, raw: str, doubts: list[str]) -> Parsed | None:
    try:
        value = date(year, month, day)
    except ValueError:
        return Parsed(None, 0.0, raw, [f"return_date: “{raw}” is not a real date"])
    return Parsed(value.isoformat(), confidence, raw, doubts)


PARSERS = {
    "order_id": parse_order_id,
    "sku": parse_sku,
    "quantity": parse_quantity,
    "reason": parse_reason,
    "customer_id": parse_customer_id,
    "return_date": parse_date,
}


# -- the extractor -------------------------------------------------------------------------


@dataclass(slots=True)
class Extraction:
    """Fields found on a page, plus where to look again for fields whose label had no readable value."""

    readings: dict[str, FieldReading]
    retry: dict[str, Box] = field(default_factory=dict)


@dataclass(slots=True)
class _Candidate:
    field: str
    value_span: Span | None
    label_span: Span
    line: Span
    exact_label: bool


class FieldExtractor:
    """Reads the six fields from lines of text in any of the supported layouts."""

    def __init__(self, config: FieldConfig | None = None) -> None:
        self.config = config or FieldConfig()
        self.labels = LabelFinder(self.config)

    def extract(self, lines: Iterable[TextLine], barcodes: Iterable[Barcode] = ()) -> Extraction:
        spans = [self._best_reading(Span.of(line, index)) for index, line in enumerate(lines)]
        spans = [s for s in spans if s.text]
        hits = {id(span): self.labels.find(span.text) for span in spans}
        candidates: dict[str, list[_Candidate]] = {name: [] for name in FIELD_NAMES}
        for span in spans:
            line_hits = hits[id(span)]
            for index, hit in enumerate(line_hits):
                if hit.field is None or hit.field not in candidates:
                    continue
                end = line_hits[index + 1].start if index + 1 < len(line_hits) else len(span.text)
                inline = _strip_separators(span.part(hit.end, end))
                label = span.part(hit.start, hit.end)
                values: list[Span | None] = (
                    [inline] if inline.text else [*self._neighbour_values(label, span, spans, hits)]
                )
                for value in values or [None]:
                    candidates[hit.field].append(_Candidate(hit.field, value, label, span, hit.exact))
        extraction = Extraction(readings={})
        for name in FIELD_NAMES:
            reading, retry = self._choose(name, candidates[name], spans, hits)
            if reading is not None:
                extraction.readings[name] = reading
            if retry is not None:
                extraction.retry[name] = retry
        self._apply_barcodes(extraction, list(barcodes))
        return extraction

    def _best_reading(self, span: Span) -> Span:
        """A garbled line where the second engine reads a label (数量 read as “RO”): take the
        second engine's reading of it."""
        second = span.second
        if second is None or not second.text or self.labels.find(span.text):
            return span
        if not any(hit.field is not None for hit in self.labels.find(second.text)):
            return span
        return Span(second.text, second.confidences, span.box, origin=span.origin)

    def may_hold_field(self, lines: list[TextLine], index: int) -> bool:
        """Whether the rest of a long line (only its beginning read so far) may hold a field:
        it starts with a field label, or it sits where a lone label's value would be. Lines
        starting with another label (地址, 联系电话 …) or text under no label (titles,
        footers) do not."""
        line = lines[index]
        hits = self.labels.find(Span.of(line).text)
        if any(hit.field is not None for hit in hits):
            return True
        if hits and hits[0].start == 0:
            return False
        for other in lines:
            span = Span.of(other)
            other_hits = self.labels.find(span.text)
            alone = len(other_hits) == 1 and other_hits[0].field is not None and other_hits[0].end == len(span.text)
            if not alone or other is line:
                continue
            beside = other.box.vertical_overlap(line.box) >= 0.5 and other.box.x1 <= line.box.x0 + other.box.height
            under = line.box.y0 >= other.box.centre_y and line.box.horizontal_overlap(other.box) >= 0.3
            if beside or (under and line.box.y0 - other.box.y1 < other.box.height * 2.5):
                return True
        return False

    def reread(self, extraction: Extraction, name: str, line: TextLine) -> None:
        """Use another reading of a field's value region (see :attr:`Extraction.retry`)."""
        whole = Span.of(line)
        span = _strip_separators(whole)
        span.second = whole.second
        parsed = self._parse_with_opinion(name, span)
        if parsed is not None and parsed.value is not None:
            extraction.readings[name] = FieldReading(
                parsed.value,
                parsed.confidence,
                "text",
                line.box,
                parsed.raw,
                [*parsed.doubts, f"{name}: read on a second look at the region after its label"],
                alternatives=parsed.alternatives,
            )
            extraction.retry.pop(name, None)

    def parse(self, name: str, text: str, confidence: float = 1.0) -> Parsed | None:
        """Parse one value as printed (for tests, corrections and the API)."""
        span = Span(unicodedata.normalize("NFKC", text).replace(" ", ""), [], Box(0, 0, 1, 1))
        span.confidences = [confidence] * len(span.text)
        return PARSERS[name](span, self.config)

    def _neighbour_values(
        self, label: Span, line: Span, spans: list[Span], hits: dict[int, list[LabelHit]]
    ) -> list[Span]:
        """Value cells for a label that stands alone: the cell to its right (forms) and the one
        below it (header tables); the caller keeps whichever parses."""
        height = max(label.box.height, 8.0)
        found: list[Span] = []
        right = [
            s
            for s in spans
            if s is not line
            and s.box.vertical_overlap(label.box) >= 0.5
            and s.box.x0 >= label.box.x1 - height * 0.5
            and s.box.x0 - label.box.x1 < height * 12
        ]
        if right:
            value = self._up_to_label(min(right, key=lambda s: s.box.x0), hits)
            if value is not None:
                found.append(value)
        below = [
            s
            for s in spans
            if s is not line
            and s.box.y0 >= label.box.centre_y
            and s.box.y0 - label.box.y1 < height * 2.5
            and s.box.horizontal_overlap(label.box) >= 0.3
        ]
        if below:
            value = self._up_to_label(min(below, key=lambda s: s.box.y0), hits)
            if value is not None:
                found.append(value)
        return found

    @staticmethod
    def _up_to_label(span: Span, hits: dict[int, list[LabelHit]]) -> Span | None:
        own = hits.get(id(span), [])
        end = own[0].start if own else len(span.text)
        if end == 0:
            return None
        value = _strip_separators(span.part(0, end))
        if value.text and span.second is not None:
            value.second = span.second
        return value if value.text else None

    def _parse_with_opinion(self, name: str, span: Span) -> Parsed | None:
        """Parse a value; where a second engine read the same line, weigh its reading too."""
        parser = PARSERS[name]
        first = parser(span, self.config)
        if span.second is None:
            return first
        second_span = self._same_field_in(name, span.second)
        second = parser(second_span, self.config) if second_span is not None else None
        if first is None or first.value is None:
            if second is not None and second.value is not None:
                second.confidence = min(second.confidence, 0.6)
                second.doubts.append(f"{name}: only the second engine read it (“{second.raw}”)")
            return second
        if second is None or second.value is None:
            return first
        if second.value == first.value:
            first.confidence = max(first.confidence, min(0.97, (first.confidence + second.confidence)))
            return first
        # Disagreement: keep the more confident reading, remember the other, and flag it.
        chosen, other = (second, first) if second.confidence > first.confidence + 0.1 else (first, second)
        chosen.confidence = min(chosen.confidence, 0.5)
        chosen.alternatives.append(other.value)
        chosen.doubts.append(f"{name}: the engines disagree (“{first.value}” or “{second.value}”)")
        return chosen

    def _same_field_in(self, name: str, line: Span) -> Span | None:
        """The value of field ``name`` in another engine's reading of a line (or the whole reading)."""
        line_hits = self.labels.find(line.text)
        for index, hit in enumerate(line_hits):
            if hit.field == name:
                end = line_hits[index + 1].start if index + 1 < len(line_hits) else len(line.text)
                return _strip_separators(line.part(hit.end, end))
        if not line_hits:
            # No label recognised in the other reading: its value is what follows a colon.
            colon = next((i for i, c in enumerate(line.text) if c in ":："), -1)
            return _strip_separators(line.part(colon + 1, len(line.text)))
        return None

    def _choose(
        self, name: str, candidates: list[_Candidate], spans: list[Span], hits: dict[int, list[LabelHit]]
    ) -> tuple[FieldReading | None, Box | None]:
        """The field's reading (None if its label is nowhere) and, when its label was found
        but no value could be read, the region to read again."""
        readings: list[FieldReading] = []
        retry: Box | None = None
        for candidate in candidates:
            if candidate.value_span is None:
                retry = retry or self._value_region(candidate, spans, hits)
                continue
            if candidate.value_span.second is None and candidate.line.second is not None:
                own = candidate.line.text.find(candidate.value_span.text)
                if own >= 0:
                    candidate.value_span.second = candidate.line.second
            parsed = self._parse_with_opinion(name, candidate.value_span)
            if parsed is None or parsed.value is None:
                retry = retry or self._value_region(candidate, spans, hits)
                if parsed is not None and parsed.doubts:
                    readings.append(
                        FieldReading(None, 0.0, "text", candidate.value_span.box, parsed.raw, parsed.doubts)
                    )
                continue
            label_trust = 1.0 if candidate.exact_label else 0.9  # a misread label may be another label
            readings.append(
                FieldReading(
                    parsed.value,
                    parsed.confidence * label_trust,
                    "text",
                    candidate.value_span.box,
                    parsed.raw,
                    parsed.doubts,
                    line=candidate.value_span.origin,
                    alternatives=parsed.alternatives,
                )
            )
        found = [r for r in readings if r.value is not None]
        if not found:
            if not candidates:
                return None, None
            # The label is there but its value is not readable: never silently absent.
            unreadable = readings[0] if readings else FieldReading(None, 0.0, "text", candidates[0].label_span.box)
            unreadable.doubts.append(f"{name}: its label is on the photo but the value could not be read")
            return unreadable, retry
        best = max(found, key=lambda r: r.confidence)
        others = {r.value for r in found} - {best.value}
        if others:
            best.doubts.append(
                f"{name}: the page shows different values ({', '.join(map(str, sorted(map(str, others))))})"
            )
            best.confidence = min(best.confidence, 0.5)
        return best, None

    @staticmethod
    def _value_region(candidate: _Candidate, spans: list[Span], hits: dict[int, list[LabelHit]]) -> Box:
        """Where the value probably is: right of the label, or below it when the label is one
        of a row of header labels (a header table)."""
        label = candidate.label_span.box
        height = max(label.height, 8.0)
        row_labels = [
            s.box
            for s in spans
            if s is not candidate.line
            and hits.get(id(s))
            and hits[id(s)][0].start == 0
            and s.box.vertical_overlap(label) >= 0.5
        ]
        headers_right = [b for b in row_labels if b.x0 >= label.x1 - height * 0.5]
        if not headers_right:
            return Box(label.x1, label.y0 - height * 0.2, label.x1 + height * 14, label.y1 + height * 0.2)
        right_edge = min(min(b.x0 for b in headers_right) - height * 0.5, label.x0 + height * 8)
        return Box(label.x0 - height * 0.5, label.y1 + height * 0.3, max(right_edge, label.x1), label.y1 + height * 2.4)

    def _apply_barcodes(self, extraction: Extraction, barcodes: list[Barcode]) -> None:
        """An order number in a QR code or barcode confirms or replaces the printed one."""
        pattern = textpatterns.compile(self.config.order_id_pattern)
        coded = []
        for barcode in barcodes:
            text = barcode.text.strip()
            keyed = _KEYED_ORDER_ID.search(text)
            number = keyed.group(1) if keyed else text
            if pattern.fullmatch(number):
                coded.append((number, barcode))
        if not coded:
            return
        printed = extraction.readings.get("order_id")
        if printed is not None and printed.value is not None:
            for number, _ in coded:
                if number == printed.value:
                    printed.confidence = max(printed.confidence, 0.99)
                    printed.source = "text+barcode"
                    return
            close = [(n, b) for n, b in coded if _edit_distance(n, str(printed.value)) <= 2]
            if close:
                number, barcode = close[0]
                extraction.readings["order_id"] = FieldReading(
                    number,
                    0.95,
                    "barcode",
                    printed.box,
                    str(printed.value),
                    [],
                )
            return
        numbers = {n for n, _ in coded}
        if len(numbers) == 1:
            number, barcode = coded[0]
            extraction.readings["order_id"] = FieldReading(
                number, 0.9, "barcode", barcode.box, barcode.text, ["order_id: read from a barcode only"]
            )


def _edit_distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]
