"""Reply wording, Simplified Chinese and English."""

from __future__ import annotations

from typing import Any

TEMPLATES: dict[str, dict[str, str]] = {
    "greet": {
        "zh": "您好，我是售后智能客服，可以帮您查询订单物流、修改地址、退款退货、换货补发、开发票，"
        "也可以为您转接人工客服。请问有什么可以帮您？",
        "en": "Hello, I'm the after-sales assistant. I can track orders, change addresses, handle refunds, "
        "returns, exchanges and invoices, or put you through to an agent. How can I help?",
    },
    "ask_order_id": {
        "zh": "请提供您的订单号（10–20 位数字），我来为您查询。",
        "en": "Please tell me your order number (10–20 digits) and I'll look it up.",
    },
    "choose_order": {
        "zh": "您最近有以下订单，请问要查询哪一个？也可以直接发送订单号。\n{choices}",
        "en": "These are your recent orders. Which one shall I look up? You can also send an order number.\n{choices}",
    },
    "order_not_found": {
        "zh": "没有找到订单号 {order_id} 的订单，请核对后重新发送订单号。",
        "en": "I couldn't find order {order_id}. Please check the number and send it again.",
    },
    "order_status": {
        "zh": "订单 {order_id}（{items}）当前状态：{status}。",
        "en": "Order {order_id} ({items}) is {status}.",
    },
    "logistics_header": {"zh": "最新物流：", "en": "Latest tracking:"},
    "no_logistics": {"zh": "暂无物流信息。", "en": "No tracking updates yet."},
    "anything_else": {"zh": "还有其他可以帮您的吗？", "en": "Is there anything else I can help with?"},
    "affirm_open": {"zh": "好的，请问还有什么可以帮您？", "en": "Sure, what else can I do for you?"},
    "goodbye": {
        "zh": "好的，感谢您的咨询，祝您生活愉快！",
        "en": "All right, thank you for contacting us. Have a nice day!",
    },
    "clarify": {
        "zh": "抱歉，我没有理解您的意思。您可以换个说法，比如“查一下我的订单”，或者回复“转人工”联系人工客服。",
        "en": 'Sorry, I didn\'t understand that. You could rephrase it, e.g. "where is my order", '
        'or say "agent" to talk to a person.',
    },
    "nlu_down": {
        "zh": "抱歉，系统有点忙，暂时没能理解您的问题。您可以稍后再试，或者回复“转人工”联系人工客服。",
        "en": "Sorry, I'm having trouble understanding right now. Please try again shortly, "
        'or say "agent" to talk to a person.',
    },
    "handoff": {
        "zh": "正在为您转接人工客服，您当前排在第 {position} 位，请稍候，客服会在这里回复您。",
        "en": "I'm putting you through to an agent. You are number {position} in the queue; "
        "please wait, an agent will reply here.",
    },
    "handoff_topic": {
        "zh": "{topic}需要人工客服为您办理，正在为您转接，您当前排在第 {position} 位，请稍候，客服会在这里回复您。",
        "en": "An agent will handle your {topic} request. You are number {position} in the queue; "
        "please wait, an agent will reply here.",
    },
    "thanks": {
        "zh": "不客气，很高兴能帮到您！还有其他可以帮您的吗？",
        "en": "You're welcome! Is there anything else I can help with?",
    },
    "quick_order": {"zh": "查询订单", "en": "Track my order"},
    "quick_human": {"zh": "转人工", "en": "Talk to an agent"},
}

STATUS_LABELS: dict[str, dict[str, str]] = {
    "paid": {"zh": "已付款，等待仓库拣货", "en": "paid and waiting to be picked"},
    "picking": {"zh": "仓库拣货打包中", "en": "being picked and packed"},
    "shipped": {"zh": "已发货，运输中", "en": "shipped and on its way"},
    "delivered": {"zh": "已签收", "en": "delivered"},
    "cancelled": {"zh": "已取消", "en": "cancelled"},
}


def register(templates: dict[str, dict[str, str]]) -> None:
    """Add a flow's wording; a key defined twice is a mistake, not an override."""
    clash = sorted(set(templates) & set(TEMPLATES))
    if clash:
        raise ValueError(f"reply templates defined twice: {', '.join(clash)}")
    TEMPLATES.update(templates)


def say(key: str, language: str, **values: Any) -> str:
    options = TEMPLATES[key]
    return options.get(language, options["zh"]).format(**values)


def status_label(status: str, language: str) -> str:
    return _label(STATUS_LABELS, status, language)


def _label(table: dict[str, dict[str, str]], key: str, language: str) -> str:
    """The key's label in the language (Chinese if missing); an unknown key stands for itself."""
    labels = table.get(key)
    return labels.get(language, labels["zh"]) if labels else key
