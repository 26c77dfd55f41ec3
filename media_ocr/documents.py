"""Which document a photo shows, and the page helpers the per-type extractors share.

Owns telling a courier waybill (快递面单), a VAT invoice (增值税发票) and the shop's own return
slip apart from the printed words on the page (:func:`classify`), and :class:`LabelledPage`: the
recognised lines with the labels found in them, each label's value (after it on its line, or in
the cell to its right), and where the lines sit. A page is a return slip unless the words of a
waybill or an invoice clearly outweigh a slip's: the shop's e-commerce invoice that names an
order, an SKU and a quantity stays a slip.

Must not know what the fields mean to the shop, or how the image was read.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import textpatterns
from media_ocr.fields import FieldConfig, LabelFinder, LabelHit, Span, _strip_separators
from media_ocr.model import Barcode, DocumentType, FieldReading, FieldValue, TextLine

# Words each document type prints, with their weight: a word only one type prints weighs 2.
_CUES: dict[DocumentType, tuple[tuple[str, int], ...]] = {
    "vat_invoice": (
        ("增值税", 2), ("发票代码", 2), ("价税合计", 2), ("纳税人识别号", 2), ("密码区", 2), ("校验码", 2),
        ("税额", 2), ("税率", 2), ("开票人", 2), ("购买方", 1), ("销售方", 1), ("购货单位", 2), ("销货单位", 2),
        ("发票号码", 1), ("开票日期", 1), ("发票", 1), ("货物或应税劳务", 2), ("机器编号", 2),
    ),
    "waybill": (
        ("收件人", 2), ("寄件人", 2), ("运单号", 1), ("快递单号", 2), ("签收", 2), ("代收货款", 2), ("派件", 2),
        ("揽件", 2), ("寄件", 1), ("收件", 1), ("快递", 1), ("速运", 2), ("速递", 2), ("物流", 1),
        ("已验视", 2), ("保价", 1), ("到付", 2), ("寄付", 2), ("月结", 2),
    ),
    "return_slip": (
        ("退货", 2), ("订单号", 1), ("订单编号", 1), ("原订单号", 2), ("商品SKU", 2), ("SKU", 2), ("商品编码", 1),
        ("货号", 1), ("退货数量", 2), ("数量", 1), ("退货原因", 2), ("原因", 1), ("会员ID", 1), ("客户ID", 1),
        ("客户编号", 1), ("会员编号", 1), ("退货日期", 2), ("申请日期", 1), ("售后", 1),
    ),
}  # fmt: skip
_CARRIER_WORDS = ("顺丰", "中通", "圆通", "韵达", "申通", "极兔", "京东快递", "京东物流", "邮政", "EMS", "德邦", "百世")
MIN_SCORE = 4
"""A waybill or an invoice needs at least this much weight of its own words."""
STRONG_INVOICE = 2
"""…and an invoice at least this many words only an invoice prints (增值税, 发票代码, 价税合计 …)."""


@dataclass(frozen=True, slots=True)
class Classification:
    document_type: DocumentType
    scores: dict[str, int]
    cues: list[str]
    """The printed words the decision rests on (shown to reviewers)."""


def classify(lines: Iterable[TextLine], barcodes: Sequence[Barcode] = ()) -> Classification:
    """The document type of a page from its recognised lines (only their beginnings are needed)."""
    text = "".join(Span.of(line).text for line in lines).upper()
    scores: dict[str, int] = {}
    found: dict[str, list[str]] = {}
    for kind, cues in _CUES.items():
        hits = [word for word, _ in cues if word.upper() in text]
        # A longer cue contains a shorter one (收件人 ⊃ 收件): count the longer only.
        hits = [w for w in hits if not any(w != other and w in other for other in hits)]
        found[kind] = hits
        scores[kind] = sum(weight for word, weight in cues if word in hits)
    carriers = [word for word in _CARRIER_WORDS if word in text]
    if carriers:
        scores["waybill"] += 2
        found["waybill"] = [*found["waybill"], *carriers]
    strong_invoice = sum(1 for word, weight in _CUES["vat_invoice"] if weight == 2 and word in found["vat_invoice"])
    candidates: list[DocumentType] = []
    if scores["vat_invoice"] >= MIN_SCORE and strong_invoice >= STRONG_INVOICE:
        candidates.append("vat_invoice")
    if scores["waybill"] >= MIN_SCORE:
        candidates.append("waybill")
    chosen: DocumentType = "return_slip"
    for kind in candidates:  # the type whose own words weigh most, a slip on a tie
        if scores[kind] > scores[chosen]:
            chosen = kind
    return Classification(chosen, scores, found[chosen])


# -- labelled pages ------------------------------------------------------------------------


@dataclass(slots=True)
class Occurrence:
    """One printed label and what stands after it (None: nothing readable)."""

    key: str
    span: Span
    hit: LabelHit
    value: Span | None

    @property
    def y(self) -> float:
        return self.span.box.centre_y


@dataclass(slots=True)
class LabelledPage:
    """Recognised lines with their labels found; the value of a label is the rest of its line up
    to the next label or, when that is empty, the line to its right (a table's next cell)."""

    lines: list[TextLine]
    labels: dict[str, tuple[str, ...]]
    others: tuple[str, ...] = ()
    spans: list[Span] = field(init=False)
    hits: dict[int, list[LabelHit]] = field(init=False)

    def __post_init__(self) -> None:
        finder = LabelFinder(FieldConfig(labels=self.labels, other_labels=self.others))
        spans = [s for s in (Span.of(line, index) for index, line in enumerate(self.lines)) if s.text]
        self.spans = _join_split_labels(spans, [*(w for ws in self.labels.values() for w in ws), *self.others])
        self.hits = {id(span): finder.find(span.text) for span in self.spans}

    @property
    def height(self) -> float:
        """The page's text height: from the first line's top to the last line's bottom."""
        if not self.spans:
            return 1.0
        return max(s.box.y1 for s in self.spans) - min(s.box.y0 for s in self.spans) or 1.0

    @property
    def top(self) -> float:
        return min((s.box.y0 for s in self.spans), default=0.0)

    def occurrences(self, key: str) -> list[Occurrence]:
        """Every place the label ``key`` is printed, top to bottom."""
        found: list[Occurrence] = []
        for span in self.spans:
            line_hits = self.hits[id(span)]
            for index, hit in enumerate(line_hits):
                if hit.field != key:
                    continue
                end = line_hits[index + 1].start if index + 1 < len(line_hits) else len(span.text)
                value: Span | None = _strip_separators(span.part(hit.end, end))
                if value is not None and not value.text:
                    value = self.right_of(span.part(hit.start, hit.end), span)
                found.append(Occurrence(key, span, hit, value))
        found.sort(key=lambda o: (o.span.box.y0, o.span.box.x0))
        return found

    def right_of(self, label: Span, line: Span) -> Span | None:
        """The text in the cell right of a label standing alone, up to that cell's first label."""
        height = max(label.box.height, 8.0)
        right = [
            s
            for s in self.spans
            if s is not line
            and s.box.vertical_overlap(label.box) >= 0.5
            and s.box.x0 >= label.box.x1 - height * 0.5
            and s.box.x0 - label.box.x1 < height * 15
        ]
        if not right:
            return None
        span = min(right, key=lambda s: s.box.x0)
        own = self.hits.get(id(span), [])
        end = own[0].start if own else len(span.text)
        value = _strip_separators(span.part(0, end)) if end else None
        return value if value is not None and value.text else None

    def below(self, span: Span, *, gap: float = 1.8) -> Span | None:
        """The next line under ``span`` that overlaps it horizontally, if it follows closely."""
        height = max(span.box.height, 8.0)
        under = [
            s
            for s in self.spans
            if s is not span
            and s.box.y0 >= span.box.centre_y
            and s.box.y0 - span.box.y1 < height * gap
            and s.box.horizontal_overlap(span.box) >= 0.3
        ]
        return min(under, key=lambda s: s.box.y0) if under else None

    def labelled(self, span: Span) -> bool:
        return any(hit.field is not None or hit.start == 0 for hit in self.hits.get(id(span), []))


def _join_split_labels(spans: list[Span], labels: list[str]) -> list[Span]:
    """Spaced-out labels (名　　称：) come out of detection as two boxes, 名 and 称：个人: a lone
    character joined with the box right of it on its row makes a label again."""
    starts = {label[:1] for label in labels if len(label) >= 2}
    used: set[int] = set()
    joined: list[Span] = []
    for span in spans:
        if id(span) in used:
            continue
        if len(span.text) == 1 and span.text in starts:
            height = max(span.box.height, 8.0)
            right = [
                s
                for s in spans
                if s is not span
                and id(s) not in used
                and s.box.vertical_overlap(span.box) >= 0.5
                and -height * 0.5 <= s.box.x0 - span.box.x1 < height * 6
            ]
            if right:
                nxt = min(right, key=lambda s: s.box.x0)
                text = span.text + nxt.text
                if any(text.startswith(label) for label in labels):
                    used.add(id(nxt))
                    joined.append(
                        Span(text, span.confidences + nxt.confidences, span.box.union(nxt.box), origin=nxt.origin)
                    )
                    continue
        joined.append(span)
    return [s for s in joined if id(s) not in used]


def reading(value: FieldValue, span: Span, start: int = 0, end: int | None = None, **extra: object) -> FieldReading:
    """A field read from characters ``start:end`` of a span (confidence: the weakest of them)."""
    end = len(span.text) if end is None else end
    confidences = span.confidences[start:end] or [0.0]
    found = FieldReading(value, min(confidences), "text", span.box, span.text[start:end], line=span.origin)
    for name, item in extra.items():
        setattr(found, name, item)
    return found


def first_match(pattern: textpatterns.Pattern, span: Span) -> textpatterns.Match[str] | None:
    return pattern.search(span.text)
