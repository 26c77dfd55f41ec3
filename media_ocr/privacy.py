"""Masking personal data found on photos: phone numbers, names, addresses, e-mails, ID numbers.

Owns what counts as personal data in OCR text and how it is masked (``138****8000``, ``张*``,
``浙江省杭州市****``), a logging filter that masks it in log records, and finding the lines of
a page that hold it (so a photo can be shown with them blurred). OCR text is stored and shown
masked; only the photo itself, for reviewers, carries the original.

Must not know where text comes from or who looks at it.
"""

from __future__ import annotations

import logging
import unicodedata

import textpatterns

_PHONE = textpatterns.compile(r"(?<!\d)(1[3-9]\d)[\s-]?(\d{4})[\s-]?(\d{4})(?!\d)")
_LANDLINE = textpatterns.compile(r"(?<!\d)(0\d{2,3})-?(\d{3,4})(\d{4})(?!\d)")
_ID_CARD = textpatterns.compile(r"(?<![\dA-Za-z])(\d{6})\d{8}(\d{3}[\dXx])(?![\dA-Za-z])")
_EMAIL = textpatterns.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
_NAME_LABELS = ("联系人", "姓名", "寄件人", "收件人", "购买方名称", "客户姓名", "收货人", "退货人")
_ADDRESS_LABELS = ("寄件地址", "取件地址", "收货地址", "退货地址", "地址")
_LABEL_END = r"\s*[:：]?\s*"
# A name is 1–4 Chinese characters that do not start the next label (联系人：孙军联系电话：…).
_NAME = textpatterns.compile(
    rf"({'|'.join(_NAME_LABELS)}){_LABEL_END}((?:(?!联系|电话|手机|地址|会员|客户|订单)[\u4e00-\u9fff·]){{1,4}}"
    r"|[A-Za-z][A-Za-z .]{1,40})"
)
_ADDRESS = textpatterns.compile(rf"({'|'.join(_ADDRESS_LABELS)}){_LABEL_END}(\S[^\n]*)")
_REGION = textpatterns.compile(r"^(.{2,8}?(?:省|自治区))?(.{2,8}?(?:市|自治州|盟))?")
# Labels that end an address when several fields share a line (联系人：张三 地址：… 电话：…).
_STOP = textpatterns.compile(r"(联系电话|电话|手机|联系人|姓名|寄件人|收件人|订单号|订单编号|货号|SKU)")


def mask_phone(match: textpatterns.Match[str]) -> str:
    return f"{match.group(1)}****{match.group(3)}"


def mask_name(name: str) -> str:
    """张伟 → 张*, 欧阳娜娜 → 欧***, Alice Smith → A****."""
    return name[:1] + "*" * max(1, min(len(name) - 1, 4))


def mask_address(address: str) -> str:
    """Keep the province and city (enough for routing), hide the rest."""
    stop = _STOP.search(address)
    tail = address[stop.start() :] if stop else ""
    address = address[: stop.start()] if stop else address
    region = _REGION.match(address)
    kept = region.group(0) if region else ""
    return f"{kept}****{(' ' + tail) if tail else ''}" if address.strip() else address + tail


def mask_text(text: str) -> str:
    """``text`` with every phone number, e-mail, ID number, labelled name and address masked."""
    text = unicodedata.normalize("NFC", text)
    text = _ADDRESS.sub(lambda m: f"{m.group(1)}：{mask_text_without_address(mask_address(m.group(2)))}", text)
    return mask_text_without_address(text)


def mask_text_without_address(text: str) -> str:
    text = _ID_CARD.sub(lambda m: f"{m.group(1)}********{m.group(2)}", text)
    text = _PHONE.sub(mask_phone, text)
    text = _LANDLINE.sub(lambda m: f"{m.group(1)}-****{m.group(3)}", text)
    text = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    return _NAME.sub(lambda m: f"{m.group(1)}：{mask_name(m.group(2))}", text)


_PERSONAL_LABELS = (*_NAME_LABELS, *_ADDRESS_LABELS, "联系电话", "电话", "手机", "收件", "寄件")


def holds_personal_data(text: str) -> bool:
    """Whether ``text`` holds personal data (used to find the lines to blur on a photo): masking
    would change it, or it starts with the label of a name, phone or address — a long line may
    have been read only up to the first digits of its value (the rest of a slip's line is skipped)."""
    normal = unicodedata.normalize("NFC", text)
    return mask_text(normal) != normal or "".join(normal.split()).startswith(_PERSONAL_LABELS)


class MaskingFilter(logging.Filter):
    """Masks personal data in a log record's message (install on handlers that may see OCR text)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True
