"""Synthetic return slips, labels and invoices with known contents, and phone-photo damage.

Owns the evaluation data the tests and ``bench/ocr.py`` share: it renders documents with PIL and
the CJK fonts the set-up installs (``fonts-noto-cjk``, ``fonts-wqy-zenhei``), in several layouts
(label/value lines, ruled forms, header tables, shipping labels with QR and barcodes, invoices),
then damages them the way phone photos are damaged (rotation, perspective, blur, noise, low
contrast, shadow, JPEG artefacts, small size). Everything is seeded, so a seed gives the same
images on every machine with the same fonts.

Must not know how documents are read: it only knows what is printed on them.
"""

from __future__ import annotations

import io
import random
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache
from typing import Literal

import cv2
import numpy as np
import zxingcpp
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

from media_ocr.fields import DEFAULT_REASONS

Layout = Literal["lines", "form", "header_table", "label", "invoice"]
Damage = Literal[
    "clean", "rotation", "perspective", "blur", "noise", "low_contrast", "shadow", "jpeg", "small", "photo"
]
LAYOUTS: tuple[Layout, ...] = ("lines", "form", "header_table", "label", "invoice")
SLIP_LAYOUTS: tuple[Layout, ...] = ("lines", "form", "header_table", "label")
DAMAGES: tuple[Damage, ...] = (
    "clean",
    "rotation",
    "perspective",
    "blur",
    "noise",
    "low_contrast",
    "shadow",
    "jpeg",
    "small",
    "photo",
)

# Fonts as fontconfig names them; resolved to files at run time.
FONT_FAMILIES = (
    "Noto Sans CJK SC:style=Regular",
    "Noto Serif CJK SC:style=Regular",
    "Noto Sans CJK SC:style=Bold",
    "WenQuanYi Zen Hei:style=Regular",
    "Noto Sans Mono CJK SC:style=Regular",
)

# Labels as printed on real slips: the extractor must accept every one of them.
PRINTED_LABELS: dict[str, tuple[str, ...]] = {
    "order_id": ("订单号", "订单编号", "原订单号", "订单号码"),
    "sku": ("商品SKU", "商品编码", "货号", "SKU"),
    "quantity": ("退货数量", "数量", "退货件数"),
    "reason": ("退货原因", "原因", "退货理由"),
    "customer_id": ("客户ID", "会员ID", "客户编号", "会员编号"),
    "return_date": ("退货日期", "申请日期", "日期"),
}
NAME_LABELS = ("联系人", "姓名", "寄件人")
PHONE_LABELS = ("联系电话", "手机", "电话")
ADDRESS_LABELS = ("地址", "寄件地址", "取件地址")
TITLES = ("退货申请单", "售后退货单", "退货登记表", "退 货 单")
FOOTERS = ("请将本单随商品一同寄回", "客服热线 400-820-8820", "退款将在收货后3个工作日内原路退回")

DATE_FORMATS = ("iso", "slash", "dot", "chinese", "chinese_unpadded", "compact")

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
_GIVEN = ("伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超")
_CITIES = ("浙江省杭州市西湖区文三路", "上海市浦东新区张江路", "广东省深圳市南山区科技园路", "北京市海淀区中关村大街")
_SKU_WORDS = ("TEA", "CUP", "SHOE", "BAG", "COAT", "LAMP", "MUG", "SOCK", "HAT", "DESK", "KEY", "FAN")
_PRODUCTS = ("西湖龙井 500g", "保温杯 480ml", "跑步鞋 42码", "羊毛围巾", "台灯", "马克杯", "棉袜 5双装", "电风扇")


@dataclass(frozen=True, slots=True)
class ReturnSlip:
    """What is printed on one document: the fields to read plus personal data to mask."""

    order_id: str
    sku: str
    quantity: int
    reason: str | None
    customer_id: str
    return_date: date | None
    name: str
    phone: str
    address: str
    product: str
    tracking_no: str
    ordered_quantity: int

    def expected_fields(self) -> dict[str, str | int | None]:
        """The fields a perfect reader returns (``None``: not printed on this document)."""
        return {
            "order_id": self.order_id,
            "sku": self.sku,
            "quantity": self.quantity,
            "reason": self.reason,
            "customer_id": self.customer_id,
            "return_date": self.return_date.isoformat() if self.return_date else None,
        }

    def order_document(self) -> dict[str, object]:
        """The shop's order this slip refers to, in the ``{"orders": [...]}`` seed format."""
        return {
            "order_id": self.order_id,
            "status": "delivered",
            "customer": {"name": self.name, "phone": self.phone, "customer_id": self.customer_id},
            "items": [{"sku": self.sku, "name": self.product, "quantity": self.ordered_quantity, "price": 59.0}],
            "amount": 59.0 * self.ordered_quantity,
            "address": self.address,
            "paid_at": "2026-09-25T10:00:00+08:00",
        }


@dataclass(slots=True)
class Sample:
    """One evaluation image and what is printed on it."""

    name: str
    layout: Layout
    damage: Damage
    slip: ReturnSlip
    image: Image.Image
    meta: dict[str, object] = field(default_factory=dict)

    def png(self) -> bytes:
        return to_bytes(self.image, "PNG")


def to_bytes(image: Image.Image, fmt: str = "PNG", quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    if fmt == "JPEG":
        image.convert("RGB").save(buffer, "JPEG", quality=quality)
    else:
        image.save(buffer, fmt)
    return buffer.getvalue()


# -- contents ------------------------------------------------------------------------------


def random_slip(rng: random.Random, *, with_reason: bool = True, with_date: bool = True) -> ReturnSlip:
    day = date(2026, 10, 1) + timedelta(days=rng.randrange(0, 50))
    ordered = rng.randint(1, 5)
    customer_id = rng.choice(("C", "VIP", "M")) + str(rng.randrange(10**6, 10**8))
    return ReturnSlip(
        order_id=f"2026{rng.randint(10, 12):02d}{rng.randint(1, 28):02d}{rng.randrange(10**4):04d}",
        sku=f"SKU-{rng.choice(_SKU_WORDS)}-{rng.choice(('', '0'))}{rng.randint(1, 999)}",
        quantity=rng.randint(1, ordered),
        reason=rng.choice(DEFAULT_REASONS) if with_reason else None,
        customer_id=customer_id,
        return_date=day if with_date else None,
        name=rng.choice(_SURNAMES) + rng.choice(_GIVEN),
        phone="1" + rng.choice("3456789") + "".join(rng.choice("0123456789") for _ in range(9)),
        address=f"{rng.choice(_CITIES)}{rng.randint(1, 999)}号{rng.randint(1, 30)}幢{rng.randint(101, 2808)}",
        product=rng.choice(_PRODUCTS),
        tracking_no="SF" + "".join(rng.choice("0123456789") for _ in range(12)),
        ordered_quantity=ordered,
    )


def format_date(day: date, style: str) -> str:
    match style:
        case "iso":
            return day.isoformat()
        case "slash":
            return day.strftime("%Y/%m/%d")
        case "dot":
            return day.strftime("%Y.%m.%d")
        case "chinese":
            return day.strftime("%Y年%m月%d日")
        case "chinese_unpadded":
            return f"{day.year}年{day.month}月{day.day}日"
        case "compact":
            return day.strftime("%Y%m%d")
    raise ValueError(f"unknown date style {style!r}")


# -- fonts ---------------------------------------------------------------------------------


@cache
def font_files() -> tuple[tuple[str, int], ...]:
    """(file, face index) of each installed font in :data:`FONT_FAMILIES`."""
    found: list[tuple[str, int]] = []
    for pattern in FONT_FAMILIES:
        try:
            out = subprocess.run(
                ["fc-match", "-f", "%{file}|%{index}|%{family}", pattern],
                capture_output=True,
                text=True,
                check=True,
                timeout=10,
            ).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        path, index, families = out.split("|", 2)
        if pattern.split(":", 1)[0] in families and (path, int(index)) not in found:
            found.append((path, int(index)))
    if not found:
        raise RuntimeError("no CJK font found: install fonts-noto-cjk (scripts/setup.sh does)")
    return tuple(found)


@cache
def load_font(number: int, size: int) -> ImageFont.FreeTypeFont:
    files = font_files()
    path, index = files[number % len(files)]
    return ImageFont.truetype(path, size, index=index)


# -- rendering -----------------------------------------------------------------------------


class _Sheet:
    """A white sheet with a drawing cursor."""

    def __init__(self, width: int, height: int, font_number: int, size: int) -> None:
        self.image = Image.new("L", (width, height), 255)
        self.draw = ImageDraw.Draw(self.image)
        self.font = load_font(font_number, size)
        self.size = size
        self.font_number = font_number

    def text(self, xy: tuple[float, float], text: str, size: int | None = None) -> None:
        font = self.font if size is None else load_font(self.font_number, size)
        self.draw.text(xy, text, fill=20, font=font)

    def width_of(self, text: str) -> float:
        return self.draw.textlength(text, font=self.font)

    def trimmed(self, bottom: int) -> Image.Image:
        return self.image.crop((0, 0, self.image.width, min(self.image.height, bottom)))


def _pick_labels(rng: random.Random) -> dict[str, str]:
    return {name: rng.choice(options) for name, options in PRINTED_LABELS.items()}


def _separator(rng: random.Random) -> str:
    return rng.choice(("：", "：", ":", " "))


def render(slip: ReturnSlip, layout: Layout, rng: random.Random) -> tuple[Image.Image, dict[str, object]]:
    """The clean document (grayscale) and how it was made (labels, font, date style)."""
    font_number = rng.randrange(len(font_files()))
    date_style = rng.choice(DATE_FORMATS)
    labels = _pick_labels(rng)
    meta: dict[str, object] = {"font": font_files()[font_number][0], "date_style": date_style, "labels": labels}
    when = format_date(slip.return_date, date_style) if slip.return_date else ""
    values = {
        "order_id": slip.order_id,
        "sku": slip.sku,
        "quantity": str(slip.quantity),
        "reason": slip.reason or "",
        "customer_id": slip.customer_id,
        "return_date": when,
    }
    match layout:
        case "lines":
            image = _render_lines(slip, values, labels, rng, font_number)
        case "form":
            image = _render_form(slip, values, labels, rng, font_number)
        case "header_table":
            image = _render_header_table(slip, values, labels, rng, font_number)
        case "label":
            image = _render_label(slip, values, labels, rng, font_number)
        case "invoice":
            image = _render_invoice(slip, values, rng, font_number)
    return image, meta


def _render_lines(
    slip: ReturnSlip, values: dict[str, str], labels: dict[str, str], rng: random.Random, font_number: int
) -> Image.Image:
    sheet = _Sheet(900, 900, font_number, 30)
    sheet.text((60, 40), rng.choice(TITLES), size=44)
    rows = [(labels[k], values[k]) for k in PRINTED_LABELS if values[k]]
    rows.insert(rng.randrange(len(rows)), (rng.choice(NAME_LABELS), slip.name))
    rows.insert(rng.randrange(len(rows)), (rng.choice(PHONE_LABELS), slip.phone))
    rows.append((rng.choice(ADDRESS_LABELS), slip.address))
    y = 130
    for label, value in rows:
        sheet.text((60, y), f"{label}{_separator(rng)}{value}")
        y += 56
    sheet.text((60, y + 20), rng.choice(FOOTERS), size=24)
    return sheet.trimmed(y + 90)


def _render_form(
    slip: ReturnSlip, values: dict[str, str], labels: dict[str, str], rng: random.Random, font_number: int
) -> Image.Image:
    """A ruled form with two label/value pairs per row."""
    sheet = _Sheet(1000, 700, font_number, 26)
    sheet.text((40, 30), rng.choice(TITLES), size=40)
    pairs = [(labels[k], values[k]) for k in PRINTED_LABELS if values[k]]
    pairs += [(rng.choice(NAME_LABELS), slip.name), (rng.choice(PHONE_LABELS), slip.phone)]
    columns = (40, 200, 510, 670, 960)
    top, row_height = 110, 60
    rows = [pairs[i : i + 2] for i in range(0, len(pairs), 2)]
    for index, row in enumerate(rows):
        y = top + index * row_height
        for pair_index, (label, value) in enumerate(row):
            sheet.text((columns[2 * pair_index] + 10, y + 14), label)
            sheet.text((columns[2 * pair_index + 1] + 10, y + 14), value)
    bottom = top + len(rows) * row_height
    sheet.draw.text((50, bottom + 14), f"{rng.choice(ADDRESS_LABELS)}：{slip.address}", fill=20, font=sheet.font)
    bottom_with_address = bottom + row_height
    for y in range(top, bottom_with_address + 1, row_height):
        sheet.draw.line((columns[0], y, columns[-1], y), fill=30, width=2)
    for x in columns:
        sheet.draw.line(
            (x, top, x, bottom if x not in (columns[0], columns[-1]) else bottom_with_address), fill=30, width=2
        )
    return sheet.trimmed(bottom_with_address + 40)


def _render_header_table(
    slip: ReturnSlip, values: dict[str, str], labels: dict[str, str], rng: random.Random, font_number: int
) -> Image.Image:
    """Two ruled tables with the labels as column headers and one row of values under them."""
    sheet = _Sheet(1000, 560, font_number, 26)
    sheet.text((40, 30), rng.choice(TITLES), size=40)
    groups = [("order_id", "customer_id", "return_date"), ("sku", "quantity", "reason")]
    top = 110
    for group in groups:
        present = [k for k in group if values[k]]
        width = 920 // len(present)
        for index, key in enumerate(present):
            x = 40 + index * width
            sheet.text((x + 12, top + 12), labels[key])
            sheet.text((x + 12, top + 62), values[key])
        for y in (top, top + 50, top + 104):
            sheet.draw.line((40, y, 40 + width * len(present), y), fill=30, width=2)
        for index in range(len(present) + 1):
            x = 40 + index * width
            sheet.draw.line((x, top, x, top + 104), fill=30, width=2)
        top += 150
    sheet.text((40, top), f"{rng.choice(NAME_LABELS)}：{slip.name}  {rng.choice(PHONE_LABELS)}：{slip.phone}")
    sheet.text((40, top + 50), f"{rng.choice(ADDRESS_LABELS)}：{slip.address}", size=24)
    return sheet.trimmed(top + 100)


def _render_label(
    slip: ReturnSlip, values: dict[str, str], labels: dict[str, str], rng: random.Random, font_number: int
) -> Image.Image:
    """A shipping-style return label: a QR code with the order number, a Code 128 tracking barcode."""
    sheet = _Sheet(760, 900, font_number, 26)
    sheet.draw.rectangle((10, 10, 749, 889), outline=20, width=4)
    sheet.text((36, 36), "退货标签", size=40)
    qr = zxingcpp.create_barcode(slip.order_id, zxingcpp.BarcodeFormat.QRCode)
    qr_image = Image.fromarray(np.array(qr.to_image(scale=6, add_quiet_zones=True)))
    sheet.image.paste(qr_image, (760 - qr_image.width - 30, 30))
    y = 40 + qr_image.height
    for key in PRINTED_LABELS:
        if values[key]:
            sheet.text((36, y), f"{labels[key]}{_separator(rng)}{values[key]}")
            y += 48
    sheet.text((36, y), f"{rng.choice(NAME_LABELS)}：{slip.name}  {slip.phone}")
    y += 60
    code = zxingcpp.create_barcode(slip.tracking_no, zxingcpp.BarcodeFormat.Code128)
    bars = Image.fromarray(np.array(code.to_image(scale=3, add_quiet_zones=True)))
    bars = bars.resize((bars.width, 110))
    sheet.image.paste(bars, (36, y))
    sheet.text((36, y + 124), f"运单号 {slip.tracking_no}", size=22)
    image = sheet.trimmed(y + 190)
    ImageDraw.Draw(image).rectangle((10, 10, image.width - 11, image.height - 11), outline=20, width=4)
    return image


def _render_invoice(slip: ReturnSlip, values: dict[str, str], rng: random.Random, font_number: int) -> Image.Image:
    """An e-commerce invoice: header block, an items table, totals; no return reason or date."""
    sheet = _Sheet(1100, 760, font_number, 24)
    sheet.text((360, 24), "电子发票（普通发票）", size=40)
    invoice_no = "".join(rng.choice("0123456789") for _ in range(20))
    issued = date(2026, 9, rng.randint(1, 28))
    sheet.text((40, 100), f"发票号码：{invoice_no}")
    sheet.text((640, 100), f"开票日期：{format_date(issued, rng.choice(DATE_FORMATS[:4]))}")
    sheet.text((40, 146), f"购买方名称：{slip.name}")
    sheet.text((640, 146), f"{rng.choice(('会员ID', '客户编号'))}：{slip.customer_id}")
    sheet.text((40, 192), f"{rng.choice(('订单编号', '订单号'))}：{slip.order_id}")
    headers = (rng.choice(("商品编码", "货号")), "商品名称", "规格", "数量", "单价", "金额")
    columns = (40, 290, 540, 680, 800, 930, 1060)
    top = 250
    price = rng.choice((59, 89, 129, 268))
    cells = (slip.sku, slip.product, "件", values["quantity"], f"{price:.2f}", f"{price * slip.quantity:.2f}")
    for index, (header, cell) in enumerate(zip(headers, cells, strict=True)):
        sheet.text((columns[index] + 10, top + 12), header)
        sheet.text((columns[index] + 10, top + 64), cell)
    for y in (top, top + 50, top + 110, top + 160):
        sheet.draw.line((columns[0], y, columns[-1], y), fill=30, width=2)
    for x in columns:
        sheet.draw.line((x, top, x, top + 110), fill=30, width=2)
    sheet.text((50, top + 122), f"合计金额：¥{price * slip.quantity:.2f}")
    sheet.text((40, top + 190), f"销售方：示例商城有限公司  地址：{slip.address}", size=22)
    return sheet.trimmed(top + 240)


# -- damage --------------------------------------------------------------------------------

from media_ocr.preprocess import Gray  # noqa: E402  (the image type OpenCV's stubs use)


def _desk(shape: tuple[int, int], rng: np.random.Generator) -> Gray:
    """A mid-grey textured surface the sheet lies on."""
    height, width = shape
    base = rng.integers(70, 130)
    texture = cv2.GaussianBlur(rng.normal(0, 18, (height, width)).astype(np.float32), (0, 0), 3)
    gradient = np.linspace(-15, 15, width, dtype=np.float32)[None, :]
    desk: Gray = np.clip(base + texture + gradient, 0, 255).astype(np.uint8)
    return desk


def _on_desk(sheet: Gray, rng: np.random.Generator, margin: float = 0.12) -> tuple[Gray, NDArray[np.float32]]:
    height, width = sheet.shape
    pad_y, pad_x = int(height * margin), int(width * margin)
    canvas = _desk((height + 2 * pad_y, width + 2 * pad_x), rng)
    canvas[pad_y : pad_y + height, pad_x : pad_x + width] = sheet
    corners = np.array(
        [[pad_x, pad_y], [pad_x + width, pad_y], [pad_x + width, pad_y + height], [pad_x, pad_y + height]],
        dtype=np.float32,
    )
    return canvas, corners


def rotate(image: Gray, degrees: float, rng: np.random.Generator) -> Gray:
    """The sheet on a desk, turned by ``degrees`` (counter-clockwise), nothing cut off."""
    canvas, _ = _on_desk(image, rng, margin=0.06)
    height, width = canvas.shape
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    new_width, new_height = int(height * sin + width * cos), int(height * cos + width * sin)
    matrix[0, 2] += new_width / 2 - width / 2
    matrix[1, 2] += new_height / 2 - height / 2
    fill = int(np.median(canvas[:5]))
    return cv2.warpAffine(canvas, matrix, (new_width, new_height), flags=cv2.INTER_CUBIC, borderValue=fill)


def perspective(image: Gray, rng: np.random.Generator, strength: float = 0.08) -> Gray:
    """The sheet photographed at an angle: its corners moved independently."""
    canvas, corners = _on_desk(image, rng, margin=0.14)
    height, width = image.shape
    jitter = rng.uniform(-strength, strength, (4, 2)) * np.array([width, height])
    moved = (corners + jitter).astype(np.float32)
    matrix = cv2.getPerspectiveTransform(corners, moved)
    fill = int(np.median(canvas[:5]))
    return cv2.warpPerspective(
        canvas, matrix, (canvas.shape[1], canvas.shape[0]), flags=cv2.INTER_CUBIC, borderValue=fill
    )


def blur(image: Gray, sigma: float) -> Gray:
    return cv2.GaussianBlur(image, (0, 0), sigma)


def noise(image: Gray, rng: np.random.Generator, sigma: float = 24.0, salt: float = 0.01) -> Gray:
    noisy = image.astype(np.float32) + rng.normal(0, sigma, image.shape)
    speckles = rng.random(image.shape)
    noisy[speckles < salt / 2] = 0
    noisy[speckles > 1 - salt / 2] = 255
    return np.clip(noisy, 0, 255).astype(np.uint8)


def low_contrast(image: Gray, low: int = 120, high: int = 185) -> Gray:
    return (low + image.astype(np.float32) * (high - low) / 255).astype(np.uint8)


def shadow(image: Gray, rng: np.random.Generator, depth: float = 0.5) -> Gray:
    """A soft shadow (a hand or a phone) over part of the sheet."""
    height, width = image.shape
    mask: Gray = np.zeros((height, width), np.float32)
    centre = (int(rng.uniform(0.2, 0.8) * width), int(rng.uniform(0.6, 1.1) * height))
    axes = (int(width * rng.uniform(0.5, 0.8)), int(height * rng.uniform(0.4, 0.7)))
    cv2.ellipse(mask, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), max(width, height) / 15)
    lit = 1.0 - depth * mask
    return np.clip(image.astype(np.float32) * lit, 0, 255).astype(np.uint8)


def jpeg(image: Gray, quality: int) -> Gray:
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    decoded = cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE)
    if decoded is None:
        raise RuntimeError("JPEG decoding failed")
    return decoded


def shrink(image: Gray, factor: float) -> Gray:
    height, width = image.shape
    return cv2.resize(image, (int(width * factor), int(height * factor)), interpolation=cv2.INTER_AREA)


def damage(
    image: Image.Image, kind: Damage, rng: random.Random, severity: float = 1.0
) -> tuple[Image.Image, dict[str, object]]:
    """The image as a phone would have taken it, and the damage parameters used.

    ``severity`` 1 is the benchmark's degraded set; 1.5 is harsher on every damage type.
    """
    generator = np.random.default_rng(rng.randrange(2**32))
    gray: Gray = np.array(image.convert("L"))
    meta: dict[str, object] = {"severity": severity}
    match kind:
        case "clean":
            pass
        case "rotation":
            angle = rng.choice((-1, 1)) * rng.uniform(3, min(25.0, 12 * severity))
            meta["angle"] = angle
            gray = rotate(gray, angle, generator)
        case "perspective":
            gray = perspective(gray, generator, strength=min(0.15, 0.08 * severity))
        case "blur":
            sigma = rng.uniform(1.4, 2.0) * severity
            meta["sigma"] = sigma
            gray = blur(gray, sigma)
        case "noise":
            gray = noise(gray, generator, sigma=24 * severity, salt=0.01 * severity)
        case "low_contrast":
            squeeze = int(30 * (severity - 1))
            gray = low_contrast(gray, rng.randint(115, 135) + squeeze, rng.randint(175, 190) - squeeze // 2)
        case "shadow":
            gray = shadow(gray, generator, min(0.85, rng.uniform(0.45, 0.6) * severity))
        case "jpeg":
            quality = max(4, int(rng.randint(8, 14) / severity))
            meta["quality"] = quality
            gray = jpeg(gray, quality)
        case "small":
            factor = rng.uniform(0.42, 0.5) / severity
            meta["factor"] = factor
            gray = shrink(gray, factor)
        case "photo":
            # Several at once, as a real phone photo: angle, shadow, a little blur, compression.
            gray = perspective(gray, generator, strength=min(0.12, 0.05 * severity))
            gray = shadow(gray, generator, min(0.8, rng.uniform(0.3, 0.45) * severity))
            gray = blur(gray, rng.uniform(0.8, 1.2) * severity)
            gray = noise(gray, generator, sigma=8 * severity, salt=0.0)
            gray = jpeg(gray, max(10, int(rng.randint(30, 50) / severity)))
    return Image.fromarray(gray), meta


# -- sets ----------------------------------------------------------------------------------


def make_sample(
    layout: Layout,
    kind: Damage,
    rng: random.Random,
    *,
    slip: ReturnSlip | None = None,
    name: str | None = None,
    severity: float = 1.0,
) -> Sample:
    if slip is None:
        printed_reason = layout != "invoice"
        slip = random_slip(rng, with_reason=printed_reason, with_date=printed_reason)
    clean, meta = render(slip, layout, rng)
    damaged, damage_meta = damage(clean, kind, rng, severity)
    meta.update(damage_meta)
    return Sample(name or f"{layout}-{kind}", layout, kind, slip, damaged, meta)


def evaluation_set(
    seed: int = 2026, per_damage: int = 4, damages: tuple[Damage, ...] = DAMAGES, severity: float = 1.0
) -> Iterator[Sample]:
    """``per_damage`` images for every damage type, cycling through the layouts (deterministic)."""
    rng = random.Random(seed)
    number = 0
    for kind in damages:
        for _ in range(per_damage):
            layout = LAYOUTS[number % len(LAYOUTS)]
            yield make_sample(layout, kind, rng, name=f"{number:03d}-{layout}-{kind}", severity=severity)
            number += 1


# -- waybills and VAT invoices -------------------------------------------------------------


@dataclass(slots=True)
class DocumentSample:
    """A generated waybill, VAT invoice or return slip and the fields a perfect reader returns."""

    name: str
    document_type: str
    damage: Damage
    expected: dict[str, str | int | None]
    image: Image.Image

    def png(self) -> bytes:
        return to_bytes(self.image, "PNG")


_WAYBILL_CARRIERS = (
    ("顺丰速运", lambda r: "SF" + _digits(r, 12)),
    ("中通快递", lambda r: "7" + r.choice("3578") + _digits(r, 10)),
    ("圆通速递", lambda r: "YT" + _digits(r, 13)),
    ("韵达快递", lambda r: r.choice(("31", "43", "46")) + _digits(r, 11)),
    ("极兔速递", lambda r: "JT" + _digits(r, 13)),
    ("京东快递", lambda r: "JDVA" + _digits(r, 11)),
)
_COMPANIES = ("杭州云帆贸易有限公司", "深圳市华云中盛科技有限公司", "上海悦享电子商务有限公司", "北京简行科技有限公司",
              "广州市青禾食品有限公司", "苏州木森家居有限公司")  # fmt: skip
_GOODS = (
    "*茶*西湖龙井茶",
    "*日用杂品*保温杯",
    "*鞋*跑步鞋",
    "*纺织产品*羊毛围巾",
    "*照明装置*台灯",
    "*陶瓷制品*马克杯",
)


def _digits(rng: random.Random, count: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(count))


def credit_code(rng: random.Random) -> str:
    """A random unified social credit code whose GB 32100 check character is right."""
    from shop.taxid import CREDIT_CODE_CHARS, credit_code_check_character

    body = "91" + _digits(rng, 6) + "".join(rng.choice(CREDIT_CODE_CHARS) for _ in range(9))
    return body + credit_code_check_character(body)


def _masked_phone(phone: str) -> str:
    return f"{phone[:3]}****{phone[-4:]}"


def render_waybill(rng: random.Random) -> tuple[Image.Image, dict[str, str | int | None]]:
    """A 100 × 180 mm e-waybill (电子面单) in one of the common layouts: carrier, sorting code,
    barcode with the tracking number, recipient (收) and sender (寄) blocks, a stub below."""
    from media_ocr.privacy import mask_address, mask_name

    carrier, number_of = rng.choice(_WAYBILL_CARRIERS)
    tracking = number_of(rng)
    slip = random_slip(rng)
    sender = random_slip(rng)
    masked_on_label = rng.random() < 0.6  # most platforms print privacy waybills (隐私面单)
    name = mask_name(slip.name) if masked_on_label else slip.name
    phone = _masked_phone(slip.phone) if masked_on_label else slip.phone
    sorting = f"{rng.randint(100, 999)}-{rng.choice('ABCDEFGHJKW')}{rng.randint(0, 9)}-{rng.randint(0, 99):02d}"
    font_number = rng.randrange(len(font_files()))
    sheet = _Sheet(800, 1440, font_number, 30)
    draw = sheet.draw
    draw.rectangle((6, 6, 793, 1433), outline=20, width=4)
    sheet.text((30, 24), carrier, size=46)
    sheet.text((560, 34), rng.choice(("标准快递", "特快", "电商标快")), size=30)
    draw.line((6, 100, 793, 100), fill=20, width=3)
    sheet.text((40, 116), sorting, size=72)
    draw.line((6, 214, 793, 214), fill=20, width=3)
    code = zxingcpp.create_barcode(tracking, zxingcpp.BarcodeFormat.Code128)
    bars = Image.fromarray(np.array(code.to_image(scale=3, add_quiet_zones=True)))
    bars = bars.resize((min(700, bars.width), 130))
    sheet.image.paste(bars, (50, 228))
    label = rng.choice(("运单号：", "运单号 ", ""))
    sheet.text((120, 366), f"{label}{' '.join(tracking[i:i + 4] for i in range(0, len(tracking), 4))}"
               if rng.random() < 0.3 else f"{label}{tracking}", size=30)  # fmt: skip
    draw.line((6, 414, 793, 414), fill=20, width=3)
    recipient_label = rng.choice(("收", "收件人：", "收件人 "))
    sheet.text(
        (30, 436),
        recipient_label,
        size=44 if recipient_label == "收" else 30,
    )
    x = 100 if recipient_label == "收" else 30 + int(sheet.width_of(recipient_label)) + 10
    sheet.text((x, 436), f"{name}  {phone}", size=34)
    address_lines = [slip.address[:18], slip.address[18:]] if len(slip.address) > 18 else [slip.address]
    for index, part in enumerate(address_lines):
        sheet.text((100, 490 + index * 44), part, size=30)
    draw.line((6, 600, 793, 600), fill=20, width=2)
    sender_label = "寄" if recipient_label == "收" else "寄件人："
    sheet.text((30, 620), sender_label, size=44 if sender_label == "寄" else 28)
    sheet.text(
        (100 if sender_label == "寄" else 160, 622), f"{mask_name(sender.name)}  {_masked_phone(sender.phone)}", size=26
    )
    sheet.text((100, 664), sender.address[:22], size=24)
    draw.line((6, 720, 793, 720), fill=20, width=2)
    sheet.text((30, 740), f"内件品名：{slip.product}   数量：{slip.quantity}", size=26)
    sheet.text((30, 790), "签收人/签收时间：", size=26)
    sheet.text((30, 840), "已验视", size=24)
    draw.line((6, 900, 793, 900), fill=20, width=3)
    sheet.text((30, 920), carrier, size=34)
    sheet.text((300, 926), f"{label or '运单号：'}{tracking}", size=28)
    sheet.text((30, 990), f"订单号：{slip.order_id}", size=26)
    sheet.text((30, 1040), f"收件人：{name} {phone}", size=26)
    image = sheet.trimmed(1100)
    ImageDraw.Draw(image).rectangle((6, 6, image.width - 7, image.height - 7), outline=20, width=4)
    expected: dict[str, str | int | None] = {
        "carrier": carrier,
        "tracking_no": tracking,
        "recipient_name": mask_name(slip.name) if not masked_on_label else name,
        "recipient_phone": _masked_phone(slip.phone),
        "recipient_address": mask_address(slip.address),
        "sorting_code": sorting,
    }
    return image, expected


def _money(value: float) -> str:
    return f"{value:.2f}"


def render_vat_invoice(rng: random.Random) -> tuple[Image.Image, dict[str, str | int | None]]:
    """A VAT invoice in the ruled layout of paper and electronic 增值税普通/专用发票: code and
    number at the top, the buyer's block, 密码区, the goods table with its 合计 row, 价税合计 and
    the seller's block; half carry their code and number in a QR code."""
    electronic = rng.random() < 0.5
    code = _digits(rng, 12 if electronic else 10)
    number = _digits(rng, 8)
    issued = date(2026, rng.randint(1, 11), rng.randint(1, 28))
    rate = rng.choice((0.13, 0.06, 0.03, 0.09))
    amount = round(rng.uniform(20, 5000), 2)
    tax = round(amount * rate, 2)
    total = round(amount + tax, 2)
    personal = rng.random() < 0.3
    buyer = "个人" if personal else rng.choice(_COMPANIES)
    buyer_tax = None if personal else credit_code(rng)
    seller = rng.choice([c for c in _COMPANIES if c != buyer])
    seller_tax = credit_code(rng)
    font_number = rng.randrange(len(font_files()))
    sheet = _Sheet(1500, 1160, font_number, 24)
    draw = sheet.draw
    city = rng.choice(("浙江", "广东", "上海", "北京", "江苏"))
    title = f"{city}增值税{'电子' if electronic else ''}{rng.choice(('普通', '专用'))}发票"
    sheet.text((560, 30), title, size=42)
    if electronic:
        sheet.text((1080, 30), f"发票代码：{code}", size=24)
        sheet.text((1080, 70), f"发票号码：{number}", size=24)
        sheet.text((1080, 110), f"开票日期：{issued.year}年{issued.month:02d}月{issued.day:02d}日", size=24)
        sheet.text(
            (1080, 150), f"校 验 码：{_digits(rng, 5)} {_digits(rng, 5)} {_digits(rng, 5)} {_digits(rng, 5)}", size=22
        )
    else:
        sheet.text((140, 50), code, size=40)
        sheet.text((1080, 40), f"№ {number}", size=40)
        sheet.text((1300, 100), code, size=20)
        sheet.text((1300, 126), number, size=20)
        sheet.text((1080, 160), f"开票日期：{issued.year}年{issued.month:02d}月{issued.day:02d}日", size=24)
    sheet.text((60, 160), f"机器编号：{_digits(rng, 12)}", size=22)
    if rng.random() < 0.5:
        qr_text = f"01,{'10' if electronic else '04'},{code},{number},{amount:.2f},{issued:%Y%m%d},{_digits(rng, 20)},"
        qr = zxingcpp.create_barcode(qr_text, zxingcpp.BarcodeFormat.QRCode)
        qr_image = Image.fromarray(np.array(qr.to_image(scale=3, add_quiet_zones=True)))
        sheet.image.paste(qr_image, (30, 20) if electronic else (30, 60))
    top, left, right = 210, 40, 1460
    # buyer's block and 密码区
    for index, (label, value) in enumerate((("名        称：", buyer), ("纳税人识别号：", buyer_tax or ""),
                                            ("地 址、电 话：", ""), ("开户行及账号：", ""))):  # fmt: skip
        sheet.text((100, top + 14 + index * 38), label + value, size=24)
    draw.line((left, top + 170, right, top + 170), fill=30, width=2)
    for index in range(4):
        noise = "".join(rng.choice("0123456789+-*/<>") for _ in range(26))
        sheet.text((960, top + 12 + index * 38), noise, size=24)
    # goods table
    row = top + 170
    headers = (("货物或应税劳务、服务名称", 60), ("规格型号", 420), ("单位", 560), ("数量", 650), ("单价", 760),
               ("金额", 950), ("税率", 1130), ("税额", 1280))  # fmt: skip
    for header, x in headers:
        sheet.text((x, row + 10), header, size=22)
    good = rng.choice(_GOODS)
    quantity = rng.randint(1, 5)
    cells = ((good, 60), ("", 420), ("件", 570), (str(quantity), 670), (f"{amount / quantity:.2f}", 760),
             (_money(amount), 950), (f"{round(rate * 100)}%", 1140), (_money(tax), 1280))  # fmt: skip
    for cell, x in cells:
        sheet.text((x, row + 50), cell, size=22)
    sums = row + 360
    sheet.text((130, sums), "合        计", size=24)
    sheet.text((930, sums), f"¥{_money(amount)}", size=24)
    sheet.text((1260, sums), f"¥{_money(tax)}", size=24)
    draw.line((left, sums + 40, right, sums + 40), fill=30, width=2)
    sheet.text((100, sums + 54), "价税合计（大写）", size=24)
    sheet.text((440, sums + 54), "壹佰贰拾叁圆整", size=24)
    sheet.text((1000, sums + 54), f"（小写）¥{_money(total)}", size=24)
    draw.line((left, sums + 94, right, sums + 94), fill=30, width=2)
    seller_top = sums + 106
    for index, (label, value) in enumerate((("名        称：", seller), ("纳税人识别号：", seller_tax),
                                            ("地 址、电 话：", "杭州市西湖区文三路90号 0571-88888888"),
                                            ("开户行及账号：", "中国银行杭州分行 " + _digits(rng, 12)))):  # fmt: skip
        sheet.text((100, seller_top + index * 38), label + value, size=24)
    bottom = seller_top + 160
    draw.rectangle((left, top, right, bottom), outline=30, width=2)
    sheet.text((100, bottom + 16), "收款人：王芳", size=22)
    sheet.text((560, bottom + 16), "复核：李强", size=22)
    sheet.text((900, bottom + 16), "开票人：张敏", size=22)
    image = sheet.trimmed(bottom + 60)
    expected: dict[str, str | int | None] = {
        "invoice_code": code,
        "invoice_number": number,
        "issue_date": issued.isoformat(),
        "amount": _money(amount),
        "tax": _money(tax),
        "total": _money(total),
        "buyer_name": buyer,
        "buyer_tax_id": buyer_tax,
        "seller_name": seller,
        "seller_tax_id": seller_tax,
    }
    return image, expected


def document_set(
    seed: int = 2027, per_damage: int = 2, damages: tuple[Damage, ...] = DAMAGES, severity: float = 1.0
) -> Iterator[DocumentSample]:
    """``per_damage`` waybills, VAT invoices and return slips for every damage type (deterministic)."""
    rng = random.Random(seed)
    number = 0
    for kind in damages:
        for _ in range(per_damage):
            for document_type in ("waybill", "vat_invoice", "return_slip"):
                if document_type == "waybill":
                    clean, expected = render_waybill(rng)
                elif document_type == "vat_invoice":
                    clean, expected = render_vat_invoice(rng)
                else:
                    layout = rng.choice(SLIP_LAYOUTS)
                    slip = random_slip(rng)
                    clean, _ = render(slip, layout, rng)
                    expected = slip.expected_fields()
                damaged, _ = damage(clean, kind, rng, severity)
                yield DocumentSample(f"{number:03d}-{document_type}-{kind}", document_type, kind, expected, damaged)
                number += 1
