"""The hotline's own words: the top scenarios, the greeting, and the prompts around the dialogue.

Owns what the IVR says before and between the dialogue's replies: the six top scenarios (order
status, logistics, refund progress, address change, return, a person) with the phrases a caller
may say for each and the sentence each sends on to the dialogue; their order for a known caller
(an open after-sales request puts refund progress first, a parcel on its way puts logistics first
…); DTMF keys (1–5 in that order, 0 a person, 9 English, * repeat); the greeting; "not heard",
"still there?", goodbye; which number (order or phone) a dialogue prompt asks for, and the keypad
hint added to it.

Must not know Twilio, recognisers or the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import textpatterns
from ivr.digits import ORDER_ID, PHONE
from ivr.phrases import Answer

HUMAN_KEY = "0"
ENGLISH_KEY = "9"
REPEAT_KEY = "*"
END_KEY = "#"


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    label: dict[str, str]
    phrases: dict[str, tuple[str, ...]]
    utterance: dict[str, str]
    """What choosing it sends to the dialogue, as if the caller had said it."""


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "order_status",
            {"zh": "查询订单", "en": "order status"},
            {
                "zh": ("查订单", "查询订单", "订单状态", "我的订单"),
                "en": ("order status", "my order", "check my order"),
            },
            {"zh": "查订单", "en": "check my order status"},
        ),
        Scenario(
            "logistics",
            {"zh": "查询物流", "en": "delivery tracking"},
            {"zh": ("查物流", "物流", "快递到哪了", "包裹"), "en": ("tracking", "delivery", "where is my parcel")},
            {"zh": "查物流", "en": "where is my parcel"},
        ),
        Scenario(
            "refund_progress",
            {"zh": "退款进度", "en": "refund status"},
            {"zh": ("退款进度", "退款", "我的退款"), "en": ("refund status", "refund", "my refund")},
            {"zh": "查询退款进度", "en": "what is the status of my refund"},
        ),
        Scenario(
            "address_change",
            {"zh": "修改地址", "en": "changing the address"},
            {"zh": ("改地址", "修改地址", "修改收货地址"), "en": ("change address", "change my address", "address")},
            {"zh": "修改收货地址", "en": "change my delivery address"},
        ),
        Scenario(
            "return",
            {"zh": "退货", "en": "returns"},
            {"zh": ("退货", "我要退货", "退货退款"), "en": ("return", "return an item", "returns")},
            {"zh": "我要退货", "en": "return and refund"},
        ),
        Scenario(
            "human",
            {"zh": "人工服务", "en": "an agent"},
            {
                "zh": ("转人工", "人工", "人工客服", "人工服务"),
                "en": ("agent", "talk to an agent", "human", "operator"),
            },
            {"zh": "转人工", "en": "talk to an agent"},
        ),
    )
}

DEFAULT_ORDER = ("order_status", "logistics", "refund_progress", "address_change", "return")

_STATUS = {
    "paid": {"zh": "已付款，等待发货", "en": "is paid and waiting to ship"},
    "picking": {"zh": "正在仓库拣货", "en": "is being packed"},
    "shipped": {"zh": "已发货，正在配送", "en": "has shipped"},
    "delivered": {"zh": "已签收", "en": "was delivered"},
    "cancelled": {"zh": "已取消", "en": "was cancelled"},
}
_REQUEST = {
    "refund": {"zh": "退款", "en": "refund"},
    "return_refund": {"zh": "退货退款", "en": "return"},
    "exchange": {"zh": "换货", "en": "exchange"},
    "resend": {"zh": "补发", "en": "resend"},
    "compensation": {"zh": "补偿", "en": "compensation"},
}
_ASKS_FOR_NUMBER = textpatterns.compile(r"订单号|手机号|号码|order number|phone number", textpatterns.IGNORECASE)
_ASKS_FOR_PHONE = textpatterns.compile(
    r"手机号|电话号码|phone number|number doesn't match|number does not match", textpatterns.IGNORECASE
)
_ASKS_FOR_ORDER = textpatterns.compile(r"订单号|order number", textpatterns.IGNORECASE)

WORDS = {
    "welcome": {"zh": "您好，欢迎致电售后服务热线。", "en": "Hello, thank you for calling customer service."},
    "order_line": {"zh": "您尾号{tail}的订单{status}。", "en": "Your order ending {tail} {status}."},
    "request_line": {
        "zh": "您尾号{tail}的订单的{request}申请正在处理中。",
        "en": "Your {request} request for the order ending {tail} is in progress.",
    },
    "ask": {"zh": "请直接说出您的问题，或", "en": "Please tell me how I can help, or "},
    "key": {"zh": "按{key}{label}", "en": "press {key} for {label}"},
    "human_key": {"zh": "人工服务请按0。", "en": "press 0 for an agent."},
    "english": {"zh": "For English, press 9.", "en": ""},
    "not_heard": {"zh": "抱歉，我没有听清。", "en": "Sorry, I didn't catch that."},
    "still_there": {"zh": "您好，请问您还在吗？", "en": "Are you still there?"},
    "goodbye": {"zh": "感谢您的来电，再见。", "en": "Thank you for calling. Goodbye."},
    "with_agent": {
        "zh": "您的问题正在由人工客服跟进，正在为您转接，请稍候。",
        "en": "An agent is already looking after your case; putting you through now.",
    },
    "keypad_hint": {
        "zh": "您也可以用电话按键输入，以井号键结束，按星号键重新输入。",
        "en": "You can also key it in, then press hash; star starts again.",
    },
    "reenter": {"zh": "好的，请重新输入。", "en": "All right, once more please."},
    "not_a_number": {
        "zh": "抱歉，没有听清号码，请用电话按键输入，以井号键结束。",
        "en": "Sorry, I didn't get the number. Please key it in, then press hash.",
    },
    "menu_again": {
        "zh": "请说出您的问题，或按星号键重听菜单。",
        "en": "Please tell me, or press star to hear the menu.",
    },
}


def word(name: str, language: str, **values: str) -> str:
    table = WORDS[name]
    return (table.get(language) or table["zh"]).format(**values)


@dataclass(frozen=True, slots=True)
class CallerInfo:
    """What the shop knows about the number calling (all optional: an unknown caller is fine)."""

    customer_id: str | None = None
    language: str | None = None
    order_id: str | None = None
    order_status: str | None = None
    open_request_type: str | None = None
    open_request_order_id: str | None = None
    conversation_state: str | None = None
    """``bot``, ``waiting_agent``, ``agent`` … of the caller's voice conversation, if one is open."""
    scenarios_first: tuple[str, ...] = field(default=())
    order_ids: tuple[str, ...] = field(default=())
    """The caller's recent orders: a spoken order number that nearly matches one is read back as it."""

    @property
    def with_agent(self) -> bool:
        return self.conversation_state in ("waiting_agent", "agent")


def scenario_order(caller: CallerInfo) -> list[str]:
    """The top scenarios, the likeliest for this caller first."""
    first: list[str] = []
    if caller.open_request_type:
        first.append("refund_progress")
    if caller.order_status in ("shipped", "picking"):
        first.append("logistics")
    elif caller.order_status == "paid":
        first.append("address_change")
    elif caller.order_status == "delivered":
        first.append("return")
    return list(dict.fromkeys([*first, *DEFAULT_ORDER]))


def menu_answers(order: list[str], language: str) -> tuple[Answer, ...]:
    """Keys 1–5 for the scenarios in ``order``, 0 for a person; each with its spoken phrases."""
    answers = [
        Answer(SCENARIOS[name].phrases[language], SCENARIOS[name].utterance[language], key=str(n))
        for n, name in enumerate(order, start=1)
    ]
    human = SCENARIOS["human"]
    answers.append(Answer(human.phrases[language], human.utterance[language], key=HUMAN_KEY))
    return tuple(answers)


def scenario_of(payload: str) -> str | None:
    for scenario in SCENARIOS.values():
        if payload in scenario.utterance.values():
            return scenario.name
    return None


def greeting(caller: CallerInfo, order: list[str], language: str, *, offer_english: bool) -> str:
    parts = [word("welcome", language)]
    if caller.open_request_type and caller.open_request_order_id:
        request = _REQUEST.get(caller.open_request_type, {"zh": "售后", "en": "after-sales"})[language]
        parts.append(word("request_line", language, tail=caller.open_request_order_id[-4:], request=request))
    elif caller.order_id and caller.order_status in _STATUS:
        status = _STATUS[caller.order_status][language]
        parts.append(word("order_line", language, tail=caller.order_id[-4:], status=status))
    parts.append(menu_text(order, language))
    if offer_english and language == "zh":
        parts.append(word("english", language))
    return ("" if language == "zh" else " ").join(parts)


def menu_text(order: list[str], language: str) -> str:
    keys = [word("key", language, key=str(n), label=SCENARIOS[name].label[language]) for n, name in enumerate(order, 1)]
    joiner = "，" if language == "zh" else ", "
    return word("ask", language) + joiner.join(keys) + joiner + word("human_key", language)


def with_keypad_hint(text: str, language: str) -> str:
    """The dialogue asked for an order or phone number: say it can be keyed in, ending with #."""
    if _ASKS_FOR_NUMBER.search(text):
        return text + ("" if language == "zh" else " ") + word("keypad_hint", language)
    return text


def number_asked(text: str) -> str | None:
    """Which number a prompt asks the caller for: ``phone``, ``order_id`` or None."""
    if _ASKS_FOR_PHONE.search(text):
        return PHONE
    if _ASKS_FOR_ORDER.search(text):
        return ORDER_ID
    return None


def spoken_language(text: str, default: str) -> str:
    """The language a reply is in, for the voice that reads it (the dialogue answers in the
    caller's language; this only tells Mandarin from English)."""
    letters = sum(1 for c in text if c.isascii() and c.isalpha())
    han = sum(1 for c in text if "\u4e00" <= c <= "\u9fff")
    if han == 0 and letters > 0:
        return "en"
    if han > 0:
        return "zh"
    return default
