"""Fields of a VAT invoice (增值税专用/普通发票, paper or electronic): 发票代码, 发票号码, 开票日期,
金额, 税额, 价税合计, 购买方 and 销售方 with their 纳税人识别号.

Owns where those are printed and how they are read: the code and number after their labels or,
on paper invoices, large and unlabelled at the top (№ before the number, the same pair small at
the top right); the QR code of newer invoices (``01,type,code,number,amount,date,…``) confirms
them; the 合计 row gives 金额 and 税额, 小写 the total, and the three must add up; 名称 and
纳税人识别号 above the goods table are the buyer's, below it the seller's; a credit code whose
GB 32100 check fails is tried again with the look-alikes OCR confuses (O/0, I/1, S/5, Z/2).

Must not know about orders, the shop or how the image was read.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

import textpatterns
from media_ocr.documents import LabelledPage, Occurrence, reading
from media_ocr.fields import Extraction, Span, _strip_separators
from media_ocr.model import Barcode, FieldReading, TextLine
from shop.taxid import tax_id_kind

LABELS: dict[str, tuple[str, ...]] = {
    "invoice_code": ("发票代码",),
    "invoice_number": ("发票号码",),
    "issue_date": ("开票日期",),
    # 称: alone: the spaced-out 名　　称 whose 名 was not detected at all.
    "name": ("名称", "购买方名称", "销售方名称", "购方名称", "销方名称", "称:"),
    "tax_id": ("纳税人识别号", "统一社会信用代码/纳税人识别号", "纳税人识别码", "纳税识别号"),
    "total": ("小写", "价税合计(小写)"),
    "sum": ("合计",),
    "goods": ("货物或应税劳务、服务名称", "货物或应税劳务名称", "货物或应税劳务", "项目名称"),
    "machine": ("机器编号",),
    "check": ("校验码",),
}
OTHERS = ("价税合计", "价税合计(大写)", "大写", "地址、电话", "地址电话", "开户行及账号", "开户行及帐号", "密码区",
          "收款人", "复核", "开票人", "销售方", "购买方", "备注", "税额", "金额", "税率",
          "单价", "数量", "单位", "规格型号")  # fmt: skip

_DIGITS = textpatterns.compile(r"(?<![0-9])([0-9OoIlDSZB]{8,20})(?![0-9])")
_NUMBER_MARK = textpatterns.compile(r"^(?:№|NO|N0|No|N°|NQ)[.:：]?([0-9]{8})$")
_MONEY = textpatterns.compile(r"(?:([¥￥Y半])\s*)?(-?[0-9]{1,9}[.,][0-9]{2})(?![0-9])")  # spaces only after a sign
_DATE = textpatterns.compile(r"(\d{4})\s*[年\-/. ]\s*(\d{1,2})\s*[月\-/. ]\s*(\d{1,2})")
_TAX_ID = textpatterns.compile(r"[0-9A-Z]{15,20}")
_QR_FIELDS = textpatterns.compile(r"^01,(\d{2}),(\d{10,12})?,(\d{8}|\d{20}),([0-9.]*),(\d{8}),")
_LOOKALIKES = str.maketrans({"O": "0", "I": "1", "S": "5", "Z": "2", "V": "Y"})
_DIGIT_LOOKALIKES = str.maketrans({"O": "0", "o": "0", "D": "0", "I": "1", "l": "1", "S": "5", "Z": "2", "B": "8"})


def _digits(text: str) -> str:
    return text.translate(_DIGIT_LOOKALIKES)


@dataclass(slots=True)
class _Money:
    value: Decimal
    span: Span
    start: int
    end: int
    yen: bool

    def field(self) -> FieldReading:
        return reading(f"{self.value:.2f}", self.span, self.start, self.end)


class InvoiceExtractor:
    """Reads the ten invoice fields from recognised lines and barcodes."""

    def extract(self, lines: list[TextLine], barcodes: list[Barcode]) -> Extraction:
        page = LabelledPage(lines, LABELS, OTHERS)
        readings: dict[str, FieldReading] = {}
        code = self._code(page)
        if code is not None:
            readings["invoice_code"] = code
        number = self._number(page, code)
        if number is not None:
            readings["invoice_number"] = number
        issued = self._date(page)
        if issued is not None:
            readings["issue_date"] = issued
        readings.update(self._money(page))
        readings.update(self._parties(page))
        self._apply_qr(readings, barcodes)
        return Extraction(readings)

    # -- code, number, date --------------------------------------------------------------

    def _code(self, page: LabelledPage) -> FieldReading | None:
        for occurrence in page.occurrences("invoice_code"):
            found = _digit_run(occurrence.value, (10, 12))
            if found is not None:
                return found
        # Paper invoices: the code alone and large at the top left, again small at the top right.
        return _unlabelled(page, (10, 12), exclude=_other_numbers(page))

    def _number(self, page: LabelledPage, code: FieldReading | None) -> FieldReading | None:
        for occurrence in page.occurrences("invoice_number"):
            found = _digit_run(occurrence.value, (8, 20))
            if found is not None:
                return found
        for span in page.spans:
            match = _NUMBER_MARK.match(span.text.replace(" ", ""))
            if match is not None:
                return reading(match.group(1), span, len(span.text.replace(" ", "")) - 8)
        taken = _other_numbers(page) | ({str(code.value)} if code is not None else set())
        return _unlabelled(page, (8,), exclude=taken)

    def _date(self, page: LabelledPage) -> FieldReading | None:
        for occurrence in page.occurrences("issue_date"):
            span = occurrence.value
            if span is None:
                continue
            match = _DATE.search(_digits(span.text))
            if match is None:
                continue
            year, month, day = (int(match.group(i)) for i in (1, 2, 3))
            try:
                value = date(year, month, day).isoformat()
            except ValueError:
                found = reading(None, span, match.start(), match.end())
                found.doubts.append(f"issue_date: “{match.group(0)}” is not a real date")
                return found
            return reading(value, span, match.start(), match.end())
        return None

    # -- amounts -------------------------------------------------------------------------

    def _money(self, page: LabelledPage) -> dict[str, FieldReading]:
        amounts = _moneys(page)
        found: dict[str, FieldReading] = {}
        total: _Money | None = None
        for occurrence in page.occurrences("total"):
            candidates = [m for m in amounts if _beside(m.span, occurrence) and m.span.box.x0 >= occurrence.span.box.x0]
            if candidates:
                total = min(candidates, key=lambda m: m.span.box.x0 + m.start)
                break
        if total is None and amounts:
            total = max(amounts, key=lambda m: m.value)
        row: list[_Money] = []
        for occurrence in page.occurrences("sum"):
            row = sorted(
                (m for m in amounts if _beside(m.span, occurrence) and m is not total),
                key=lambda m: m.span.box.x0 + m.start * m.span.box.width / max(1, len(m.span.text)),
            )
            if row:
                break
        amount = row[0] if row else None
        tax = row[-1] if len(row) >= 2 else None
        if total is not None and (amount is None or tax is None or amount.value + tax.value != total.value):
            # The 合计 row was not found whole: the pair of amounts that adds up to the total.
            pair = _adding_up(amounts, total)
            if pair is not None:
                amount, tax = pair
        if amount is not None:
            found["amount"] = amount.field()
        if tax is not None:
            found["tax"] = tax.field()
        if total is not None:
            found["total"] = total.field()
        if amount is not None and tax is not None and total is not None:
            if amount.value + tax.value == total.value:
                for name in ("amount", "tax", "total"):  # three readings that add up confirm each other
                    found[name].confidence = max(found[name].confidence, 0.95)
            else:
                found["total"].doubts.append(
                    f"total: 金额 {amount.value:.2f} + 税额 {tax.value:.2f} ≠ 价税合计 {total.value:.2f}"
                )
        return found

    # -- buyer and seller ----------------------------------------------------------------

    def _parties(self, page: LabelledPage) -> dict[str, FieldReading]:
        found: dict[str, FieldReading] = {}
        divider = _divider(page)
        for key, (buyer, seller) in (("name", ("buyer_name", "seller_name")),
                                     ("tax_id", ("buyer_tax_id", "seller_tax_id"))):  # fmt: skip
            occurrences = page.occurrences(key)
            sides = _sides(occurrences, divider)
            for name, occurrence in ((buyer, sides[0]), (seller, sides[1])):
                if occurrence is None or occurrence.value is None:
                    continue
                parsed = _name(occurrence.value) if key == "name" else _tax_id(name, occurrence.value)
                if parsed is not None:
                    found[name] = parsed
        return found

    # -- the QR code ---------------------------------------------------------------------

    @staticmethod
    def _apply_qr(readings: dict[str, FieldReading], barcodes: list[Barcode]) -> None:
        """The QR code of an e-invoice (and of paper ones since 2017) repeats the code, the number,
        the amount and the date: it confirms the printed ones or, where they disagree, is taken."""
        for barcode in barcodes:
            match = _QR_FIELDS.match(barcode.text.strip())
            if match is None:
                continue
            _, code, number, amount, issued = match.groups()
            coded = {"invoice_code": code, "invoice_number": number,
                     "issue_date": f"{issued[:4]}-{issued[4:6]}-{issued[6:]}"}  # fmt: skip
            if amount:
                with contextlib.suppress(InvalidOperation):
                    coded["amount"] = f"{Decimal(amount):.2f}"
            for name, value in coded.items():
                if not value:
                    continue
                printed = readings.get(name)
                if printed is not None and printed.value == value:
                    printed.confidence = max(printed.confidence, 0.99)
                    printed.source = "text+barcode"
                elif printed is not None and printed.value is not None:
                    printed.alternatives.append(printed.value)
                    printed.value, printed.confidence, printed.source = value, 0.95, "barcode"
                else:
                    readings[name] = FieldReading(value, 0.95, "barcode", barcode.box, barcode.text)
            return


def _digit_run(span: Span | None, lengths: tuple[int, ...]) -> FieldReading | None:
    if span is None:
        return None
    text = span.text.replace(" ", "")
    for match in _DIGITS.finditer(text):
        digits = _digits(match.group(1))
        if digits.isdigit() and len(digits) in lengths:
            compact = Span(text, [c for ch, c in zip(span.text, span.confidences, strict=True) if ch != " "], span.box,
                           origin=span.origin)  # fmt: skip
            found = reading(digits, compact, match.start(1), match.end(1))
            if digits != match.group(1):
                found.confidence *= 0.7
                found.doubts.append(f"read “{match.group(1)}”, letters taken for digits")
            return found
    return None


def _other_numbers(page: LabelledPage) -> set[str]:
    """Numbers printed after other labels at the top (机器编号, 校验码): never the code or number."""
    found: set[str] = set()
    for key in ("machine", "check"):
        for occurrence in page.occurrences(key):
            if occurrence.value is not None:
                found.add(_digits(occurrence.value.text.replace(" ", "")))
    return found


def _unlabelled(page: LabelledPage, lengths: tuple[int, ...], exclude: set[str]) -> FieldReading | None:
    """A number of one of these lengths standing alone in the top quarter of the page; printed
    twice (large, and small at the top right) it is more certain."""
    limit = page.top + page.height * 0.3
    seen: list[FieldReading] = []
    for span in page.spans:
        if span.box.y0 > limit:
            continue
        text = span.text.replace(" ", "")
        digits = _digits(text)
        if digits.isdigit() and len(digits) in lengths and digits not in exclude:
            compact = Span(text, [c for ch, c in zip(span.text, span.confidences, strict=True) if ch != " "], span.box,
                           origin=span.origin)  # fmt: skip
            seen.append(reading(digits, compact))
    if not seen:
        return None
    counts = Counter(str(r.value) for r in seen)
    value, times = counts.most_common(1)[0]
    best = max((r for r in seen if r.value == value), key=lambda r: r.confidence)
    if times >= 2:
        best.confidence = max(best.confidence, 0.95)
    if len(counts) > 1:
        best.doubts.append(f"the top of the invoice shows {', '.join(sorted(counts))}")
        best.confidence = min(best.confidence, 0.6)
    return best


def _moneys(page: LabelledPage) -> list[_Money]:
    found: list[_Money] = []
    for span in page.spans:
        for match in _MONEY.finditer(span.text):
            raw = match.group(2).replace(",", ".")
            try:
                value = Decimal(raw)
            except InvalidOperation:
                continue
            found.append(_Money(value, span, match.start(2), match.end(2), bool(match.group(1))))
    return found


def _beside(span: Span, occurrence: Occurrence) -> bool:
    """On the label's row (the 合计 row spans the page; values sit far right of the label)."""
    return span is occurrence.span or span.box.vertical_overlap(occurrence.span.box) >= 0.4


def _adding_up(amounts: list[_Money], total: _Money) -> tuple[_Money, _Money] | None:
    """金额 and 税额: two other amounts that add up to the total, the larger being 金额."""
    others = [m for m in amounts if m is not total]
    pairs = [
        (a, t) for a in others for t in others if a is not t and a.value >= t.value and a.value + t.value == total.value
    ]
    if not pairs:
        return None
    # Prefer amounts printed with ¥ (the 合计 row), then the lowest on the page (the row is last).
    return max(pairs, key=lambda p: (p[0].yen + p[1].yen, p[0].span.box.y0 + p[1].span.box.y0))


def _divider(page: LabelledPage) -> float | None:
    """Where the buyer's block ends: the goods table's header (or the totals under it)."""
    for key in ("goods", "sum", "total"):
        occurrences = page.occurrences(key)
        if occurrences:
            return occurrences[0].span.box.y0
    return None


def _sides(occurrences: list[Occurrence], divider: float | None) -> tuple[Occurrence | None, Occurrence | None]:
    if divider is not None:
        above = [o for o in occurrences if o.y < divider]
        below = [o for o in occurrences if o.y > divider]
        return (above[0] if above else None, below[0] if below else None)
    if len(occurrences) >= 2:
        return occurrences[0], occurrences[1]
    return (occurrences[0] if occurrences else None), None


def _name(span: Span) -> FieldReading | None:
    value = _strip_separators(span)
    text = value.text.strip("()（）")
    if len(text) < 2 and text != "个人":
        return None if not text else reading(text, value)
    return reading(text, value)


def _tax_id(field: str, span: Span) -> FieldReading | None:
    text = span.text.upper().replace(" ", "")
    match = _TAX_ID.search(text)
    if match is None:
        return None
    compact = Span(text, [c for ch, c in zip(span.text, span.confidences, strict=True) if ch != " "], span.box,
                   origin=span.origin)  # fmt: skip
    value = match.group(0)
    found = reading(value, compact, match.start(), match.end())
    kind = tax_id_kind(value)
    if kind == "invalid" and len(value) == 18:
        fixed = value.translate(_LOOKALIKES)
        if tax_id_kind(fixed) == "credit_code":
            found.value = fixed
            found.confidence = min(found.confidence, 0.85)
            found.raw = f"{value} (look-alikes read as {fixed})"
            return found
    if kind == "invalid":
        found.doubts.append(f"{field}: {value} is not a valid taxpayer number (GB 32100 check or length)")
        found.confidence = min(found.confidence, 0.5)
    return found
