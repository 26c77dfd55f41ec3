"""The OCR data model: text lines with per-character confidence, barcodes, fields and results.

Recognition produces :class:`TextLine` objects (positions in the prepared page); extraction
turns them into :class:`FieldReading` objects; a :class:`OcrResult` is what callers keep:
the fields, a confidence per field, whether a human must look, and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

FIELD_NAMES = ("order_id", "sku", "quantity", "reason", "customer_id", "return_date")
"""The fields of the shop's own return slip, in display order."""

DocumentType = Literal["return_slip", "waybill", "vat_invoice"]
DOCUMENT_TYPES: tuple[DocumentType, ...] = ("return_slip", "waybill", "vat_invoice")
WAYBILL_FIELDS = ("carrier", "tracking_no", "recipient_name", "recipient_phone", "recipient_address", "sorting_code")
"""A courier waybill (快递面单): the recipient's name, phone and address are kept masked."""
INVOICE_FIELDS = (
    "invoice_code",
    "invoice_number",
    "issue_date",
    "amount",
    "tax",
    "total",
    "buyer_name",
    "buyer_tax_id",
    "seller_name",
    "seller_tax_id",
)
"""A VAT invoice (增值税发票): 发票代码, 发票号码, 开票日期, 金额, 税额, 价税合计, 购买方 and 销售方
with their 纳税人识别号. Amounts are strings with two decimals (``"52.70"``)."""
DOCUMENT_FIELDS: dict[str, tuple[str, ...]] = {
    "return_slip": FIELD_NAMES,
    "waybill": WAYBILL_FIELDS,
    "vat_invoice": INVOICE_FIELDS,
}
"""Each document type's fields, in display order."""


def fields_of(document_type: str) -> tuple[str, ...]:
    """The fields of a document type (a return slip's for anything unknown)."""
    return DOCUMENT_FIELDS.get(document_type, FIELD_NAMES)


FieldValue = str | int | None


@dataclass(frozen=True, slots=True)
class Box:
    """An axis-aligned rectangle in prepared-page pixels (x grows right, y grows down)."""

    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    @property
    def centre_y(self) -> float:
        return (self.y0 + self.y1) / 2

    def vertical_overlap(self, other: Box) -> float:
        """Shared height as a fraction of the smaller box's height."""
        shared = min(self.y1, other.y1) - max(self.y0, other.y0)
        return max(0.0, shared) / max(1.0, min(self.height, other.height))

    def horizontal_overlap(self, other: Box) -> float:
        """Shared width as a fraction of the smaller box's width."""
        shared = min(self.x1, other.x1) - max(self.x0, other.x0)
        return max(0.0, shared) / max(1.0, min(self.width, other.width))

    def slice(self, start: int, end: int, length: int) -> Box:
        """The part of this box holding characters ``start:end`` of a ``length``-character line."""
        if length <= 0:
            return self
        step = self.width / length
        return Box(self.x0 + step * start, self.y0, self.x0 + step * end, self.y1)

    def union(self, other: Box) -> Box:
        return Box(min(self.x0, other.x0), min(self.y0, other.y0), max(self.x1, other.x1), max(self.y1, other.y1))

    def padded(self, x: float, y: float) -> Box:
        return Box(self.x0 - x, self.y0 - y, self.x1 + x, self.y1 + y)


@dataclass(slots=True)
class TextLine:
    """One run of text as an engine read it, with a confidence (0–1) for every character."""

    text: str
    confidences: list[float]
    box: Box
    engine: str
    second_opinion: TextLine | None = None
    """Another engine's reading of the same region, when one was asked (combined engine)."""
    extent: Box | None = None
    """The whole line as detected, where only its beginning was read (``box`` covers what was
    read): personal data in the unread rest is still blurred on the reviewer's picture."""

    def __post_init__(self) -> None:
        if len(self.confidences) != len(self.text):
            raise ValueError("one confidence per character")

    @property
    def confidence(self) -> float:
        return min(self.confidences, default=0.0)


@dataclass(frozen=True, slots=True)
class Barcode:
    """A decoded barcode or QR code (its content is error-checked by the symbology)."""

    format: str
    text: str
    box: Box | None = None


@dataclass(slots=True)
class FieldReading:
    """One field as read from the page, before any check against the shop."""

    value: FieldValue
    confidence: float
    source: Literal["text", "barcode", "text+barcode", "correction"]
    box: Box | None = None
    raw: str = ""
    doubts: list[str] = field(default_factory=list)
    """Why the reading may be wrong (kept as review reasons)."""
    line: int | None = None
    """Index of the recognised line the value came from."""
    alternatives: list[FieldValue] = field(default_factory=list)
    """Other values the page could be read as (another engine's reading)."""


class Correction(BaseModel):
    """A human's change to a field, kept with who made it and why."""

    model_config = ConfigDict(extra="forbid")

    field: str
    old_value: FieldValue
    value: FieldValue
    who: str = Field(min_length=1, max_length=128)
    why: str = Field(min_length=1, max_length=1000)
    at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))


class OcrResult(BaseModel):
    """What reading one image produced; stored in ``ocr_results`` and returned by the API."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = None
    image: str = Field(description="what the image is: a file name, an attachment name or a media id")
    media_id: str | None = Field(default=None, description="sha256 of the image bytes in the media store")
    document_type: DocumentType = Field(
        default="return_slip", description="return_slip, waybill or vat_invoice: which fields were read"
    )
    document_cues: list[str] = Field(default_factory=list, description="the printed words the type was told by")
    fields: dict[str, FieldValue]
    confidence: dict[str, float]
    needs_review: bool
    review_reasons: list[str] = Field(default_factory=list)
    doubtful_fields: list[str] = Field(default_factory=list, description="fields a human should look at")
    engine: str
    regions: dict[str, list[list[float]]] = Field(
        default_factory=dict, description="each field's outline on the original photo (4 corner points)"
    )
    private_regions: list[list[list[float]]] = Field(
        default_factory=list, description="outlines of lines with personal data, to blur on the photo"
    )
    barcodes: list[dict[str, str]] = Field(default_factory=list)
    text: list[str] = Field(default_factory=list, description="the text read, personal data masked")
    order_checked: bool = False
    shop_problems: list[str] = Field(default_factory=list, description="review reasons found by the order check")
    corrections: list[Correction] = Field(default_factory=list)
    seconds: float = 0.0
    timings: dict[str, float] = Field(default_factory=dict)
    source: dict[str, Any] = Field(default_factory=dict, description="where the image came from (channel, message)")
    created_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def contract(self) -> dict[str, Any]:
        """The stable CLI/JSON contract: image, document_type, fields, confidence, needs_review,
        review_reasons, engine."""
        return {
            "image": self.image,
            "document_type": self.document_type,
            "fields": self.fields,
            "confidence": self.confidence,
            "needs_review": self.needs_review,
            "review_reasons": self.review_reasons,
            "engine": self.engine,
        }
