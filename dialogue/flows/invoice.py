"""Invoices: personal or company title, tax id for companies (checked), e-mail address, then an
invoice request the shop's e-invoicing issues."""

from __future__ import annotations

from typing import Any, ClassVar

import textpatterns
from dialogue.flows.base import Flow, is_no, is_yes
from dialogue.replies import register
from dialogue.turn import Turn
from shop import Order, OrderStatus
from shop.aftersales import RequestType, Step

register(
    {
        "invoice_cancelled_order": {
            "zh": "订单 {order_id} 已取消，无法开具发票。",
            "en": "Order {order_id} was cancelled, so no invoice can be issued.",
        },
        "ask_invoice_kind": {"zh": "请问发票抬头是个人还是企业？", "en": "Is the invoice for a person or a company?"},
        "quick_personal": {"zh": "个人", "en": "Personal"},
        "quick_company": {"zh": "企业", "en": "Company"},
        "ask_company_title": {
            "zh": "请发送企业名称（发票抬头）。",
            "en": "Please send the company name for the invoice.",
        },
        "ask_tax_id": {
            "zh": "请发送企业税号（统一社会信用代码，18 位）。",
            "en": "Please send the company's tax id (unified social credit code, 18 characters).",
        },
        "tax_id_invalid": {
            "zh": "税号 {tax_id} 校验不通过，请核对后重新发送（18 位，数字和大写字母）。",
            "en": "Tax id {tax_id} doesn't check out; please send it again (18 digits and capital letters).",
        },
        "ask_invoice_email": {"zh": "电子发票发送到哪个邮箱？", "en": "Which e-mail address should it go to?"},
        "email_invalid": {"zh": "邮箱格式不对，请重新发送。", "en": "That doesn't look like an e-mail address."},
        "confirm_invoice": {
            "zh": "请确认开票信息：\n订单：{order_id}（¥{amount:.2f}）\n抬头：{title}\n{tax_line}邮箱：{email}",
            "en": "Please confirm:\norder: {order_id} (¥{amount:.2f})\ntitle: {title}\n{tax_line}e-mail: {email}",
        },
        "tax_line": {"zh": "税号：{tax_id}\n", "en": "tax id: {tax_id}\n"},
        "personal_title": {"zh": "个人", "en": "personal"},
        "invoice_requested": {
            "zh": "开票申请已提交（{request_id}），电子发票将在 1–3 个工作日内开具并发送到 {email}。",
            "en": "Invoice requested ({request_id}); it will be issued within 1–3 working days and sent to {email}.",
        },
    }
)

_EMAIL = textpatterns.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
_TAX_ID_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_TAX_ID_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_TAX_ID = textpatterns.compile(r"[0-9A-Za-z]{15,20}")
_COMPANY = ("企业", "公司", "单位", "company", "business")
_PERSONAL = ("个人", "personal", "person", "private")


def valid_credit_code(code: str) -> bool:
    """The unified social credit code (GB 32100-2015): 18 characters, the last a mod-31 check."""
    code = code.upper()
    if len(code) != 18 or any(c not in _TAX_ID_CHARS for c in code):
        return False
    total = sum(_TAX_ID_CHARS.index(c) * w for c, w in zip(code[:17], _TAX_ID_WEIGHTS, strict=True))
    check = (31 - total % 31) % 31
    return _TAX_ID_CHARS[check] == code[17]


class InvoiceFlow(Flow):
    name: ClassVar[str] = "invoice"
    intents: ClassVar[tuple[str, ...]] = ("invoice",)

    async def proceed(self, turn: Turn, order: Order | None) -> None:
        assert order is not None
        if await self.told_open_request(turn, order, RequestType.INVOICE):
            return
        if order.status is OrderStatus.CANCELLED:
            turn.finish()
            turn.say("invoice_cancelled_order", order_id=order.order_id)
            return
        data = turn.form["data"] if turn.form else {}
        text = turn.input.text.lower()
        if any(w in text for w in _COMPANY):
            data["kind"] = "company"
        elif any(w in text for w in _PERSONAL):
            data["kind"] = "personal"
        await self._next(turn, order, data)

    async def _next(self, turn: Turn, order: Order, data: dict[str, Any]) -> None:
        if "kind" not in data:
            turn.step("kind")
            turn.say("ask_invoice_kind", quick_replies=(turn.choice("quick_personal"), turn.choice("quick_company")))
            return
        if data["kind"] == "company":
            if "title" not in data:
                turn.step("title")
                turn.say("ask_company_title")
                return
            if "tax_id" not in data:
                turn.step("tax_id")
                turn.say("ask_tax_id")
                return
        if "email" not in data:
            known = turn.input.identities.get("email") or order.customer.email
            if known and not data.get("ask_email"):
                data["email"] = known
            else:
                turn.step("email")
                turn.say("ask_invoice_email")
                return
        turn.step("confirm")
        company = data["kind"] == "company"
        turn.say(
            "confirm_invoice",
            quick_replies=self.confirm_choices(turn),
            order_id=order.order_id,
            amount=order.amount,
            title=data["title"] if company else turn.text("personal_title"),
            tax_line=turn.text("tax_line", tax_id=data["tax_id"]) if company else "",
            email=data["email"],
        )

    async def on_step(self, turn: Turn, step: str, data: dict[str, Any], order: Order | None) -> bool:
        if order is None:
            return False
        text = turn.input.text.strip()
        if step == "kind":
            lowered = text.lower()
            if any(w in lowered for w in _COMPANY):
                data["kind"] = "company"
            elif any(w in lowered for w in _PERSONAL):
                data["kind"] = "personal"
            else:
                return False
        elif step == "title":
            if not 2 <= len(text) <= 100:
                return False
            data["title"] = text
            match = _TAX_ID.search(text.replace(" ", ""))
            if match and valid_credit_code(match.group(0)):
                data["tax_id"] = match.group(0).upper()
                data["title"] = text.replace(match.group(0), "").strip(" ,，;；") or text
        elif step == "tax_id":
            match = _TAX_ID.search(text.replace(" ", ""))
            if match is None:
                return False
            if not valid_credit_code(match.group(0)):
                turn.say("tax_id_invalid", tax_id=match.group(0))
                return True
            data["tax_id"] = match.group(0).upper()
        elif step == "email":
            found = _EMAIL.search(text)
            if found is None:
                turn.say("email_invalid")
                return True
            data["email"] = found.group(0)
        elif step == "confirm":
            if is_yes(turn):
                await self._request(turn, order, data)
            elif is_no(turn):
                turn.finish()
                turn.say("flow_cancelled")
            elif found := _EMAIL.search(text):  # "发到 x@y.com" corrects the address
                data["email"] = found.group(0)
                await self._next(turn, order, data)
            else:
                turn.say("yes_no", quick_replies=self.confirm_choices(turn))
            return True
        else:
            return False
        await self._next(turn, order, data)
        return True

    async def _request(self, turn: Turn, order: Order, data: dict[str, Any]) -> None:
        aftersales = self.context.aftersales
        assert aftersales is not None
        details: dict[str, Any] = {k: data[k] for k in ("kind", "title", "tax_id", "email") if k in data}
        request = await self.new_request(turn, order, RequestType.INVOICE, amount=order.amount, details=details)
        if request is None:
            return
        request = await aftersales.advance(request.id, Step.ISSUING, actor="system:e_invoice")
        turn.say("invoice_requested", request_id=request.id, email=data["email"])
        turn.event("self_service_completed", flow=self.name, order_id=order.order_id, request_id=request.id)
