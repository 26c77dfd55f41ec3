"""Checking read fields against the shop and deciding whether a human must look.

Owns the rules that keep a wrong reading from being trusted: the order must exist, the SKU must
be in it, the quantity must be possible, the reason must be a preset, the customer and the date
must fit the order; any field that is missing, doubtful or read with low confidence sends the
result to review with the reasons (each starts with the field name, so a view can highlight
it). Also applies human corrections, which are recorded with who and why.

Must not know about channels, dialogue or how the image was read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Set
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation

import textpatterns
from media_ocr.fields import FieldConfig
from media_ocr.model import FieldReading, FieldValue, fields_of
from shop import Order, OrderLookup, OrderStatus
from shop.taxid import tax_id_kind

_SKU_SEPARATORS = textpatterns.compile(r"[-_./\s]")

# Letters and digits OCR confuses in codes such as SKUs: compared after folding these together.
_CONFUSABLE = str.maketrans({"O": "0", "D": "0", "Q": "0", "I": "1", "L": "1", "Z": "2", "S": "5", "B": "8", "G": "6"})


@dataclass(frozen=True, slots=True)
class ReviewPolicy:
    """When a result goes to a human."""

    min_confidence: float = 0.8
    """A field read with less confidence than this is doubtful."""
    required: tuple[str, ...] = ("order_id", "sku", "quantity", "reason")
    """Fields a return cannot be handled without."""
    unreturnable: tuple[OrderStatus, ...] = (OrderStatus.PAID, OrderStatus.PICKING, OrderStatus.CANCELLED)
    """Order states in which a return slip makes no sense."""
    required_by_type: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: {
            "waybill": ("carrier", "tracking_no"),
            "vat_invoice": ("invoice_number", "issue_date", "total", "seller_name"),
        }
    )
    """What a waybill and an invoice cannot be used without (a slip's are :attr:`required`)."""

    def required_for(self, document_type: str) -> tuple[str, ...]:
        return self.required_by_type.get(document_type, self.required)


@dataclass(slots=True)
class Verdict:
    needs_review: bool
    reasons: list[str] = field(default_factory=list)
    doubtful_fields: list[str] = field(default_factory=list)


class OrderCheck:
    """Checks fields against the shop's orders; may settle a look-alike SKU from the order."""

    def __init__(
        self,
        orders: OrderLookup,
        config: FieldConfig | None = None,
        policy: ReviewPolicy | None = None,
        today: Callable[[], date] = lambda: datetime.now(UTC).date(),
    ) -> None:
        self.orders = orders
        self.config = config or FieldConfig()
        self.policy = policy or ReviewPolicy()
        self.today = today

    async def check(self, fields: dict[str, FieldReading]) -> list[str]:
        """Problems found (``field: why``); may replace a field's value by the shop's spelling."""
        problems: list[str] = []
        order = await self._order(fields, problems)
        if order is None:
            return problems
        if order.status in self.policy.unreturnable:
            problems.append(f"order_id: order {order.order_id} is {order.status.value}; nothing to return yet")
        item_quantity = self._check_sku(fields, order, problems)
        if item_quantity is not None:
            # The order exists and holds the SKU read beside it: the number is corroborated.
            _confirm(fields["order_id"], "order_id")
        quantity = fields.get("quantity")
        wanted = quantity.value if quantity is not None else None
        if isinstance(wanted, int) and item_quantity is not None and wanted > item_quantity:
            problems.append(f"quantity: {wanted} is more than the {item_quantity} ordered")
        self._check_customer(fields, order, problems)
        self._check_date(fields, order, problems)
        return problems

    async def _order(self, fields: dict[str, FieldReading], problems: list[str]) -> Order | None:
        reading = fields.get("order_id")
        if reading is None or reading.value is None:
            return None
        order = await self.orders.get(str(reading.value))
        if order is not None:
            return order
        # Another engine's reading may name a real order: use it, but a human confirms.
        for alternative in reading.alternatives:
            order = await self.orders.get(str(alternative))
            if order is not None:
                problems.append(f"order_id: read as {reading.value} or {alternative}; only {alternative} exists")
                reading.value = alternative
                return order
        problems.append(f"order_id: no order {reading.value} in the shop")
        return None

    def _check_sku(self, fields: dict[str, FieldReading], order: Order, problems: list[str]) -> int | None:
        reading = fields.get("sku")
        if reading is None or reading.value is None:
            return None
        skus = {item.sku.upper(): item for item in order.items}
        value = str(reading.value).upper()
        if value in skus:
            _confirm(reading, "sku")
            return skus[value].quantity
        # The engines disagreed, a letter was read as a digit or a dash got lost: the order
        # settles it when exactly one of its SKUs matches.
        candidates = {_sku_key(str(v)) for v in (reading.value, *reading.alternatives) if v is not None}
        matches = {sku for sku in skus if _sku_key(sku) in candidates}
        if len(matches) == 1:
            (sku,) = matches
            reading.raw = f"{reading.raw} (read as {reading.value})"
            reading.value = skus[sku].sku
            _confirm(reading, "sku")
            return skus[sku].quantity
        listed = ", ".join(item.sku for item in order.items)
        problems.append(f"sku: {reading.value} is not in order {order.order_id} (it has {listed})")
        return None

    def _check_customer(self, fields: dict[str, FieldReading], order: Order, problems: list[str]) -> None:
        reading = fields.get("customer_id")
        if reading is None or reading.value is None:
            return
        extra = order.customer.model_extra or {}
        known = extra.get("customer_id") or extra.get("id") or (order.model_extra or {}).get("customer_id")
        if known is None:
            return  # this shop does not say who its customers are by id: nothing to compare
        candidates = {_sku_key(str(v)) for v in (reading.value, *reading.alternatives) if v is not None}
        if str(known).upper() == str(reading.value).upper() or _sku_key(str(known)) in candidates:
            reading.value = str(known)
            _confirm(reading, "customer_id")
        else:
            problems.append(f"customer_id: {reading.value} is not the customer of order {order.order_id}")

    def _check_date(self, fields: dict[str, FieldReading], order: Order, problems: list[str]) -> None:
        reading = fields.get("return_date")
        if reading is None or not isinstance(reading.value, str):
            return
        returned = date.fromisoformat(reading.value)
        if order.paid_at is not None and returned < order.paid_at.date():
            problems.append(f"return_date: {returned} is before the order was paid ({order.paid_at.date()})")
        if returned > self.today():
            problems.append(f"return_date: {returned} is in the future")


CONFIRMED = 0.9
"""Confidence of a value the shop confirms (an SKU of the order, the order's customer)."""


def _confirm(reading: FieldReading, name: str) -> None:
    """The shop knows this value: trust it, and forget doubts about which way it was read."""
    reading.confidence = max(reading.confidence, CONFIRMED)
    reading.doubts = [d for d in reading.doubts if not d.startswith(f"{name}: the engines disagree")]


def _sku_key(sku: str) -> str:
    """An SKU as OCR may garble it: upper case, no separators (dashes get lost), look-alikes folded."""
    return _SKU_SEPARATORS.sub("", sku.upper()).translate(_CONFUSABLE)


def preset_problems(fields: dict[str, FieldReading], config: FieldConfig) -> list[str]:
    """Checks that need no shop: the reason is a preset."""
    reading = fields.get("reason")
    if reading is not None and reading.value is not None and reading.value not in config.reasons:
        return [f"reason: “{reading.value}” is not one of the preset reasons"]
    return []


def decide(
    fields: dict[str, FieldReading],
    problems: list[str],
    policy: ReviewPolicy,
    verified: Set[str] = frozenset(),
    document_type: str = "return_slip",
) -> Verdict:
    """Review when a required field is missing, a field is doubtful or weak, or a check failed.

    ``verified`` fields were confirmed by a human: their reading doubts no longer count (the
    shop's checks still do).
    """
    reasons: list[str] = []
    names = fields_of(document_type)
    required = policy.required_for(document_type)
    for name in names:
        reading = fields.get(name)
        if name in verified:
            continue
        if reading is None or reading.value is None:
            if name in required:
                reasons.append(f"{name}: not found on the photo")
            if reading is not None:
                reasons.extend(reading.doubts)
            continue
        reasons.extend(reading.doubts)
        if reading.confidence < policy.min_confidence:
            reasons.append(f"{name}: read with low confidence ({reading.confidence:.2f})")
    reasons.extend(problems)
    unique = list(dict.fromkeys(reasons))
    doubtful = [name for name in names if any(r.startswith(f"{name}:") for r in unique)]
    return Verdict(bool(unique), unique, doubtful)


def document_problems(document_type: str, fields: dict[str, FieldReading], today: date | None = None) -> list[str]:
    """Checks of a waybill or an invoice that need no shop: an invoice is not dated in the future
    and its tax ids are taxpayer numbers (their checksum is also checked when read)."""
    problems: list[str] = []
    if document_type == "vat_invoice":
        issued = fields.get("issue_date")
        if issued is not None and isinstance(issued.value, str):
            when = date.fromisoformat(issued.value)
            if when > (today or datetime.now(UTC).date()):
                problems.append(f"issue_date: {when} is in the future")
        for name in ("buyer_tax_id", "seller_tax_id"):
            found = fields.get(name)
            if found is not None and isinstance(found.value, str) and tax_id_kind(found.value) == "invalid":
                problems.append(f"{name}: {found.value} is not a valid taxpayer number (GB 32100 check or length)")
    return problems


def corrected_reading(
    name: str, value: FieldValue, config: FieldConfig, document_type: str = "return_slip"
) -> FieldReading:
    """A human's value as a field reading (full confidence), normalised like a printed one."""
    from media_ocr.fields import FieldExtractor  # parsing rules live with extraction

    if value is None:
        return FieldReading(None, 1.0, "correction", raw="")
    if document_type != "return_slip":
        return FieldReading(normalised_value(document_type, name, str(value)), 1.0, "correction", raw=str(value))
    parsed = FieldExtractor(config).parse(name, str(value))
    if parsed is None or parsed.value is None:
        raise ValueError(f"{name}: “{value}” is not a valid {name.replace('_', ' ')}")
    if name == "reason" and parsed.value not in config.reasons:
        raise ValueError(f"reason: “{value}” is not one of the preset reasons ({', '.join(config.reasons)})")
    return FieldReading(parsed.value, 1.0, "correction", raw=str(value))


_WHITESPACE = textpatterns.compile(r"\s+")


def normalised_value(document_type: str, name: str, value: str) -> FieldValue:
    """A waybill's or an invoice's field as a person typed it, in the form the reader returns
    (digits, ISO dates, amounts with two decimals, masked personal data); ValueError if it
    cannot be that field."""
    from media_ocr.fields import FieldExtractor
    from media_ocr.privacy import mask_address, mask_name
    from media_ocr.waybill import CARRIER_NAMES

    text = _WHITESPACE.sub("", value).strip()
    if not text:
        raise ValueError(f"{name}: empty")
    if name in ("invoice_code", "invoice_number"):
        lengths = (10, 12) if name == "invoice_code" else (8, 20)
        if not text.isdigit() or len(text) not in lengths:
            raise ValueError(f"{name}: “{value}” is not {' or '.join(map(str, lengths))} digits")
        return text
    if name == "issue_date":
        parsed = FieldExtractor().parse("return_date", text)
        if parsed is None or parsed.value is None:
            raise ValueError(f"issue_date: “{value}” is not a date")
        return parsed.value
    if name in ("amount", "tax", "total"):
        try:
            return f"{Decimal(text.lstrip('¥￥')):.2f}"
        except InvalidOperation:
            raise ValueError(f"{name}: “{value}” is not an amount") from None
    if name in ("buyer_tax_id", "seller_tax_id"):
        if tax_id_kind(text) == "invalid":
            raise ValueError(f"{name}: “{value}” is not a valid taxpayer number (GB 32100 check or length)")
        return text.upper()
    if name == "carrier":
        if text not in CARRIER_NAMES:
            raise ValueError(f"carrier: one of {', '.join(CARRIER_NAMES)}")
        return text
    if name == "recipient_name":
        return text if "*" in text else mask_name(text)
    if name == "recipient_phone":
        digits = "".join(c for c in text if c.isdigit() or c == "*")
        if len(digits) != 11:
            raise ValueError(f"recipient_phone: “{value}” is not a mobile number")
        return f"{digits[:3]}****{digits[-4:]}"
    if name == "recipient_address":
        return mask_address(text)
    return text.upper() if name in ("tracking_no", "sorting_code") else text
