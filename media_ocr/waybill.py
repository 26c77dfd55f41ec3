"""Fields of a courier waybill (快递面单): carrier, tracking number, the recipient's name, phone and
address, and the sorting code (三段码).

Owns the carriers and the shapes of their tracking numbers (SF + 12–13 digits, JT + 13, YT + 13,
ZTO 12 digits from 7, Yunda 13 from 31/43/46 …); reading the tracking number from the waybill's
barcode (checked by its symbology) and confirming it with the printed one; the recipient's block
(收件人/收 …) apart from the sender's (寄件人/寄 …), a phone printed masked (``138****1234``) or
whole; the sorting code printed large (``755-W-01``). The recipient's name, phone and address are
returned masked (``张*``, ``138****1234``, ``广东省深圳市****``): a waybill names a private person.

Must not know about orders, the shop or how the image was read.
"""

from __future__ import annotations

from dataclasses import dataclass

import textpatterns
from media_ocr.documents import LabelledPage, reading
from media_ocr.fields import Extraction, Span, _strip_separators
from media_ocr.model import Barcode, FieldReading, TextLine
from media_ocr.privacy import mask_address, mask_name


@dataclass(frozen=True, slots=True)
class Carrier:
    code: str
    name: str
    words: tuple[str, ...]
    tracking: str
    """The tracking number's shape (a full match, upper case)."""


CARRIERS = (
    Carrier("SF", "顺丰速运", ("顺丰", "SF EXPRESS", "SFEXPRESS"), r"SF\d{12,13}"),
    Carrier("JD", "京东快递", ("京东",), r"JD[A-Z]{0,2}\d{11,13}"),
    Carrier("JT", "极兔速递", ("极兔", "J&T"), r"JT\d{13}"),
    Carrier("YTO", "圆通速递", ("圆通", "YTO"), r"YT\d{13}"),
    Carrier("ZTO", "中通快递", ("中通", "ZTO"), r"7[0-9]\d{10}"),
    Carrier("YD", "韵达快递", ("韵达", "YUNDA"), r"(?:31|43|46)\d{11}"),
    Carrier("STO", "申通快递", ("申通", "STO"), r"77\d{11}"),
    Carrier("EMS", "中国邮政", ("邮政", "EMS"), r"(?:E[A-Z]\d{9}CN|1\d{12})"),
    Carrier("DBL", "德邦快递", ("德邦",), r"DPK\d{12}"),
)
CARRIER_NAMES = tuple(c.name for c in CARRIERS)

LABELS: dict[str, tuple[str, ...]] = {
    "tracking": ("运单号", "快递单号", "运单编号", "物流单号", "单号"),
    "recipient": ("收件人", "收货人", "收件方", "收方"),
    "sender": ("寄件人", "发件人", "寄件方", "寄方"),
    "address": ("收件地址", "地址"),
}
OTHERS = ("签收人", "签收时间", "寄件地址", "订单号", "订单编号", "电话", "手机", "已验视", "保价", "重量", "件数",
          "代收货款", "打印时间", "备注", "物品", "内件")  # fmt: skip

_PHONE = textpatterns.compile(r"(?<![0-9])(1[3-9][0-9])[- ]?([0-9*]{4})[- ]?([0-9]{4})(?![0-9])")
_LANDLINE = textpatterns.compile(r"(?<![0-9])(0[0-9]{2,3})-?([0-9*]{3,4})([0-9]{4})(?![0-9])")
_SORTING = textpatterns.compile(r"^[0-9]{3}(?:[- ][A-Z0-9]{1,4}){1,3}$")
_TOKEN = textpatterns.compile(r"[A-Z0-9]{10,20}")
_NAME = textpatterns.compile(r"^[\u4e00-\u9fff·*＊]{1,6}|^[A-Za-z][A-Za-z .*]{0,30}")
_SENDER_START = ("寄", "发件")
_RECIPIENT_START = ("收",)
_NOT_RECIPIENT = ("收件地址", "收款", "收费", "收到", "签收")


def carrier_of_tracking(number: str) -> Carrier | None:
    """The one carrier whose tracking-number shape fits, or None (none or several fit)."""
    fitting = [c for c in CARRIERS if textpatterns.compile(c.tracking).fullmatch(number)]
    return fitting[0] if len(fitting) == 1 else None


class WaybillExtractor:
    """Reads the six waybill fields from recognised lines and barcodes."""

    def extract(self, lines: list[TextLine], barcodes: list[Barcode]) -> Extraction:
        page = LabelledPage(lines, LABELS, OTHERS)
        readings: dict[str, FieldReading] = {}
        tracking = self._tracking(page, barcodes)
        if tracking is not None:
            readings["tracking_no"] = tracking
        carrier = self._carrier(page, tracking)
        if carrier is not None:
            readings["carrier"] = carrier
        readings.update(self._recipient(page))
        sorting = self._sorting(page)
        if sorting is not None:
            readings["sorting_code"] = sorting
        return Extraction(readings)

    def _tracking(self, page: LabelledPage, barcodes: list[Barcode]) -> FieldReading | None:
        coded = [b for b in barcodes if _tracking_shape(b.text.strip().upper())]
        printed: list[FieldReading] = []
        for occurrence in page.occurrences("tracking"):
            if occurrence.value is not None:
                found = _token(occurrence.value)
                if found is not None:
                    printed.append(found)
        if not printed:
            for span in page.spans:
                found = _token(span, shaped_only=True)
                if found is not None:
                    found.confidence *= 0.9  # no label: a number of the right shape
                    printed.append(found)
        for code in coded:
            number = code.text.strip().upper()
            same = [p for p in printed if p.value == number]
            if same:
                best = max(same, key=lambda r: r.confidence)
                best.confidence, best.source = max(best.confidence, 0.99), "text+barcode"
                return best
            return FieldReading(number, 0.95, "barcode", code.box, code.text)
        if not printed:
            return None
        values = {str(p.value) for p in printed}
        best = max(printed, key=lambda r: r.confidence)
        if len(values) > 1:
            best.doubts.append(f"tracking_no: the waybill shows {', '.join(sorted(values))}")
            best.confidence = min(best.confidence, 0.6)
        elif sum(1 for p in printed if p.value == best.value) >= 2:
            best.confidence = max(best.confidence, 0.95)  # printed twice (each part of the waybill)
        return best

    def _carrier(self, page: LabelledPage, tracking: FieldReading | None) -> FieldReading | None:
        by_number = carrier_of_tracking(str(tracking.value)) if tracking and tracking.value else None
        for span in page.spans:
            text = span.text.upper()
            for carrier in CARRIERS:
                at = next((text.find(w) for w in carrier.words if w in text), -1)
                if at < 0:
                    continue
                found = reading(carrier.name, span, at, at + 2)
                if by_number is not None and by_number is not carrier:
                    found.doubts.append(
                        f"carrier: the page says {carrier.name}, the number looks like {by_number.name}"
                    )
                    found.confidence = min(found.confidence, 0.5)
                elif by_number is carrier:
                    found.confidence = max(found.confidence, 0.97)
                return found
        if by_number is not None and tracking is not None:
            return FieldReading(by_number.name, min(0.9, tracking.confidence), "text", tracking.box,
                                str(tracking.value), [], line=tracking.line)  # fmt: skip
        return None

    def _recipient(self, page: LabelledPage) -> dict[str, FieldReading]:
        start = self._recipient_line(page)
        if start is None:
            return {}
        span, rest = start
        found: dict[str, FieldReading] = {}
        # Name and phone on the label's line, or on the next one.
        for candidate in (rest, page.below(span)):
            if candidate is None or not candidate.text:
                continue
            if "recipient_phone" not in found:
                phone = _phone(candidate)
                if phone is not None:
                    found["recipient_phone"] = phone
            if "recipient_name" not in found:
                name = _name(candidate)
                if name is not None:
                    found["recipient_name"] = name
            if "recipient_phone" in found and "recipient_name" in found:
                break
        address = self._address(page, span, found)
        if address is not None:
            found["recipient_address"] = address
        return found

    def _recipient_line(self, page: LabelledPage) -> tuple[Span, Span] | None:
        """The recipient's line (the topmost recipient block: a stub repeats it lower down) and
        what follows the label on it."""
        found: list[tuple[Span, Span]] = []
        for occurrence in page.occurrences("recipient"):
            span = occurrence.span
            found.append((span, _strip_separators(span.part(occurrence.hit.end, len(span.text)))))
        # E-waybills print a large 收 (and 寄) at the start of the block.
        for span in page.spans:
            text = span.text
            fresh = not any(span is other for other, _ in found)
            if text.startswith(_RECIPIENT_START) and not text.startswith(_NOT_RECIPIENT) and fresh:
                found.append((span, _strip_separators(span.part(1, len(text)))))
        if not found:
            return None
        span, rest = min(found, key=lambda pair: pair[0].box.y0)
        if not rest.text:  # the label alone in its box: name and phone are in the next box right
            beside = page.right_of(span, span)
            if beside is not None:
                return beside, beside
        return span, rest

    def _address(self, page: LabelledPage, line: Span, found: dict[str, FieldReading]) -> FieldReading | None:
        labelled = [o for o in page.occurrences("address") if o.value is not None and o.y >= line.box.y0 - 2]
        if labelled:
            value = labelled[0].value
            assert value is not None
            return reading(mask_address(value.text), value)
        # The lines under the name and phone, until the sender's block or another label.
        parts: list[Span] = []
        current = line
        for _ in range(3):
            nxt = page.below(current)
            if nxt is None or nxt.text.startswith(_SENDER_START) or page.labelled(nxt):
                break
            if _phone(nxt) is not None and not parts and "recipient_phone" in found:
                current = nxt  # the phone on its own line under the name
                continue
            if _phone(nxt) is not None and parts:
                break
            parts.append(nxt)
            current = nxt
        if not parts:
            return None
        text = "".join(p.text for p in parts)
        confidence = min(min(p.confidences, default=0.0) for p in parts)
        box = parts[0].box
        for part in parts[1:]:
            box = box.union(part.box)
        return FieldReading(mask_address(text), confidence, "text", box, mask_address(text), line=parts[0].origin)

    def _sorting(self, page: LabelledPage) -> FieldReading | None:
        shaped = [s for s in page.spans if _SORTING.match(s.text.upper())]
        if not shaped:
            return None
        biggest = max(shaped, key=lambda s: s.box.height)  # printed large for the sorting line
        return reading(biggest.text.upper(), biggest)


def _tracking_shape(text: str) -> bool:
    return any(textpatterns.compile(c.tracking).fullmatch(text) for c in CARRIERS)


def _token(span: Span, *, shaped_only: bool = False) -> FieldReading | None:
    text = span.text.upper().replace(" ", "")
    compact = Span(text, [c for ch, c in zip(span.text, span.confidences, strict=True) if ch != " "], span.box,
                   origin=span.origin)  # fmt: skip
    for match in _TOKEN.finditer(text):
        token = match.group(0)
        if _tracking_shape(token):
            return reading(token, compact, match.start(), match.end())
        if not shaped_only and any(c.isdigit() for c in token) and len(token) >= 10:
            found = reading(token, compact, match.start(), match.end())
            found.doubts.append(f"tracking_no: {token} fits no known carrier's numbers")
            found.confidence = min(found.confidence, 0.6)
            return found
    return None


def _phone(span: Span) -> FieldReading | None:
    text = span.text
    match, landline = _PHONE.search(text), False
    if match is None:
        match, landline = _LANDLINE.search(text), True
    if match is None:
        return None
    first, _, last = match.groups()
    masked = f"{first}-****{last}" if landline else f"{first}****{last}"
    # Confidence of what is kept (the area code or first three, and the last four digits).
    kept = [c for ch, c in zip(text[match.start() : match.end()], span.confidences[match.start() : match.end()],
                               strict=True) if ch.isdigit()]  # fmt: skip
    found = reading(masked, span, match.start(), match.end())
    found.confidence = min(kept, default=0.0)
    found.raw = masked
    return found


def _name(span: Span) -> FieldReading | None:
    text = span.text
    phone = _PHONE.search(text) or _LANDLINE.search(text)
    head = text[: phone.start()] if phone else text
    match = _NAME.match(head.strip(":：,， "))
    if match is None:
        return None
    name = match.group(0).strip().replace("＊", "*")
    if not name or all(c == "*" for c in name):
        return None
    masked = name if "*" in name else mask_name(name)
    found = reading(masked, span, 0, len(match.group(0)))
    found.raw = masked
    return found
