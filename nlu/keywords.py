"""Keyword understanding for when no Rasa server answers: a few unmistakable words for the top
tasks, and the regex entity rules (order ids, phones …), so a customer can still say "转人工",
"查订单" or "退货" — or pick "1"/"2" from the numbered menu the fallback reply offers — and be
served while the NLU is down. While Rasa answers it only breaks a tie: the dialogue follows a
task the classifier ranked second when these words name it too ("开发票 抬头… 税号…" reads as
details but asks for an invoice).

Owns the keyword table; knows nothing of the dialogue beyond intent names.
"""

from __future__ import annotations

KEYWORD_CONFIDENCE = 0.6
"""What a keyword match claims: above the fallback threshold, below a real model's certainty."""

# Checked in this order: asking for a person wins over any topic in the same message.
KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("human_handoff", ("转人工", "人工", "真人", "agent", "human")),
    # Taking a request back names the request it takes back (取消退货 holds 退货): checked first.
    (
        "withdraw_request",
        ("不退了", "不换了", "取消退货", "取消退款", "取消换货", "取消售后", "撤销申请", "撤回申请", "取消申请"),
    ),
    ("invoice", ("发票", "开票", "發票", "開票", "invoice")),
    ("exchange", ("换货", "換貨", "exchange")),
    ("resend", ("补发", "補發", "漏发", "漏發")),
    ("compensation", ("赔偿", "賠償", "补偿", "補償", "compensat")),
    ("return_refund", ("退货", "return")),
    ("refund", ("退款", "退钱", "refund")),
    (
        "change_address",
        (
            "改地址",
            "地址改",
            "修改地址",
            "修改收货地址",
            "更改地址",
            "地址写错",
            "地址填错",
            "地址寫錯",
            "改個地址",
            "change address",
            "change the address",
            "change my address",
        ),
    ),
    ("order_status", ("查订单", "查询订单", "物流", "快递", "到哪", "track", "where is my order")),
)


def keyword_intent(normalised_text: str, has_order_id: bool) -> str | None:
    """The intent the keywords make clear in the normalised text, or None."""
    lowered = normalised_text.lower()
    intent = next((name for name, words in KEYWORDS if any(word in lowered for word in words)), None)
    if intent is None and has_order_id:
        return "inform"  # a bare order number: the dialogue reads it as "where is this order"
    return intent
