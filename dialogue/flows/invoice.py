"""Invoices: personal or company title, tax id for companies (checked), e-mail address, then an
invoice request the shop's e-invoicing issues."""

from __future__ import annotations

from typing import Any, ClassVar

import textpatterns
from dialogue.flows.base import Flow
from dialogue.replies import register
from dialogue.turn import Turn
from shop import Order, OrderStatus
from shop.aftersales import RequestType, Step
from shop.taxid import valid_credit_code

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
            "zh": "请发送企业税号（统一社会信用代码 18 位，或 15 位税务登记号）。",
            "en": "Please send the company's tax id (unified social credit code, 18 characters).",
        },
        "tax_id_invalid": {
            "zh": "税号 {tax_id} 校验不通过，请核对后重新发送（18 位，数字和大写字母）。",
            "en": "Tax id {tax_id} doesn't check out; please send it again (18 digits and capital letters).",
        },
        "ask_invoice_email": {
            "zh": "电子发票发送到哪个邮箱？（可以直接回复邮箱地址）",
            "en": "Which e-mail address should it go to?",
        },
        "what_invoice": {
            "zh": "为订单 {order_id} 开具发票（抬头：{title}，发送到 {email}）",
            "en": "invoice order {order_id} to {title}, sent to {email}",
        },
        "email_invalid": {"zh": "邮箱格式不对，请重新发送。", "en": "That doesn't look like an e-mail address."},
        "confirm_invoice": {
            "zh": "请确认开票信息：\n订单：{order_id}（¥{amount:.2f}）\n抬头："
            "{title}\n{tax_line}邮箱：{email}\n确认开具吗？",
            "en": "Please confirm:\norder: {order_id} (¥{amount:.2f})\n"
            "title: {title}\n{tax_line}e-mail: {email}\nIssue it?",
        },
        "tax_line": {"zh": "税号：{tax_id}\n", "en": "tax id: {tax_id}\n"},
        "personal_title": {"zh": "个人", "en": "personal"},
        "invoice_requested": {
            "zh": "开票申请已提交（{request_id}），电子发票将在 1–3 个工作日内开具并发送到 {email}。",
            "en": "Invoice requested ({request_id}); it will be issued within 1–3 working days and sent to {email}.",
        },
    }
)

_EMAIL = textpatterns.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+", textpatterns.ASCII)  # not 发到…@163.com就好
_TAX_ID = textpatterns.compile(r"(?<![0-9A-Za-z])[0-9A-Za-z]{18}(?![0-9A-Za-z])")
_SPACE_IN_CODE = textpatterns.compile(r"(?<=[0-9A-Z]) (?=[0-9A-Z])")
_COMPANY = ("企业", "公司", "单位", "company", "business", "企業")
_PERSONAL = ("个人", "personal", "person", "private")


_TITLE = textpatterns.compile(
    r"(?:抬头|抬頭|公司名|名称|名稱|company)?\s*+[:：]?\s*+"
    r"([\u4e00-\u9fff（）()A-Za-z0-9]{2,40}?(?:有限责任公司|有限責任公司|有限公司|公司|商行|工作室|厂|廠|店|中心))",
    textpatterns.IGNORECASE,
)
_OLD_TAX_ID = textpatterns.compile(
    r"(?:税号|稅號|tax\s*id|纳税人识别号)\s*[:：]?\s*(\d{15})(?!\d)", textpatterns.IGNORECASE
)
_SPECIAL = ("专票", "專票", "增值税专用", "公司票", "企业票", "单位")


def tax_id_in(text: str) -> tuple[str | None, str | None]:
    """(a valid tax id, a tax id that fails its check) in the text: an 18-character unified social
    credit code (mod-31 check), or an old 15-digit tax registration number after 税号."""
    # As written first ("tax ID 91310115MA1K4B7C9H"), then with the spaces inside a code closed up ("9133 0106 …").
    for candidate in (text, _SPACE_IN_CODE.sub("", text)):
        for match in _TAX_ID.finditer(candidate):
            code = match.group(0).upper()
            if any(c.isdigit() for c in code) and not code.isdigit():
                return (code, None) if valid_credit_code(code) else (None, code)
    if old := _OLD_TAX_ID.search(text):
        return old.group(1), None
    return None, None


class InvoiceFlow(Flow):
    name: ClassVar[str] = "invoice"
    intents: ClassVar[tuple[str, ...]] = ("invoice",)

    def order_is_candidate(self, order: Order) -> bool:
        return order.status is not OrderStatus.CANCELLED

    def remember(self, turn: Turn, data: dict[str, Any]) -> None:
        """Everything an invoice needs that the message already says: nothing is asked twice."""
        text = turn.text_now
        lowered = text.lower()
        if any(w in lowered for w in (*_COMPANY, *_SPECIAL)):
            data.setdefault("kind", "company")
        elif any(w in lowered for w in _PERSONAL) or "個人" in text:
            data.setdefault("kind", "personal")
        if (title := _TITLE.search(text)) is not None:
            data.setdefault("title", title.group(1))
            data.setdefault("kind", "company")
        tax_id, invalid = tax_id_in(text)
        if tax_id:
            data["tax_id"] = tax_id
            data.pop("invalid_tax_id", None)
        elif invalid:
            data["invalid_tax_id"] = invalid
        if found := _EMAIL.search(text):
            data["email"] = found.group(0)

    async def proceed(self, turn: Turn, order: Order | None) -> None:
        assert order is not None
        if await self.told_open_request(turn, order, RequestType.INVOICE):
            return
        if order.status is OrderStatus.CANCELLED:
            turn.finish()
            turn.say("invoice_cancelled_order", order_id=order.order_id)
            turn.act("refused", order=order.order_id)
            return
        data = turn.form["data"] if turn.form else {}
        self.remember(turn, data)
        await self._next(turn, order, data)

    async def _next(self, turn: Turn, order: Order, data: dict[str, Any]) -> None:
        if "kind" not in data:
            self._ask(turn, order, "kind", "invoice_title", "ask_invoice_kind",
                      (turn.choice("quick_personal"), turn.choice("quick_company")))  # fmt: skip
            return
        if data["kind"] == "company":
            if "title" not in data:
                self._ask(turn, order, "title", "invoice_title", "ask_company_title")
                return
            if "tax_id" not in data:
                if invalid := data.pop("invalid_tax_id", None):
                    turn.say("tax_id_invalid", tax_id=invalid)
                self._ask(turn, order, "tax_id", "tax_id", "ask_tax_id")
                return
        if "email" not in data:
            known = turn.input.identities.get("email") or order.customer.email
            offers = (turn.choice("order_choice", summary=known),) if known else ()
            self._ask(turn, order, "email", "email", "ask_invoice_email", offers)
            return
        company = data["kind"] == "company"
        title = data["title"] if company else turn.text("personal_title")
        what = turn.text("what_invoice", order_id=order.order_id, title=title, email=data["email"])
        self.ask_to_confirm(
            turn, "confirm_invoice", "invoice", order, what=what,
            order_id=order.order_id, amount=order.amount, title=title,
            tax_line=turn.text("tax_line", tax_id=data["tax_id"]) if company else "", email=data["email"],
        )  # fmt: skip

    @staticmethod
    def _ask(turn: Turn, order: Order, step: str, slot: str, template: str, choices: tuple[Any, ...] = ()) -> None:
        turn.step(step)
        turn.asked("slot", slot=slot)
        turn.say(template, quick_replies=choices)
        turn.act("ask", order=order.order_id, slot=slot)

    async def on_step(self, turn: Turn, step: str, data: dict[str, Any], order: Order | None) -> bool:
        if order is None:
            return False
        text = turn.text_now.strip()
        if step == "confirm":
            if await self.answer_confirmation(turn, lambda: self._request(turn, order, data)):
                return True
            if found := _EMAIL.search(text):  # "发到 x@y.com" corrects the address
                data["email"] = found.group(0)
                await self._next(turn, order, data)
                return True
            return False
        before = dict(data)
        self.remember(turn, data)
        if step == "title" and "title" not in data and 2 <= len(text) <= 60 and turn.intent in ("inform", None):
            data["title"] = text
        if step == "tax_id" and "tax_id" not in data and "invalid_tax_id" not in data:
            return False
        if step == "email" and "email" not in data:
            if "@" in text:
                turn.say("email_invalid")
                self._ask(turn, order, "email", "email", "ask_invoice_email")
                return True
            return False
        if data == before and step != "tax_id" and step not in data:
            return False  # the message gave nothing the invoice needs
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
