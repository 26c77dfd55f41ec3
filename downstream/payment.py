"""The payment centre (支付中心): refunds go in, their results come back by signed callback.

The wire protocol follows the common Chinese payment APIs' refund interface (WeChat Pay v3's
shape): ``POST /v3/refund/domestic/refunds`` with ``out_trade_no`` (the order), ``out_refund_no``
(our after-sales request id: the idempotency key, so a repeated submission is the same refund),
``amount`` in fen and ``notify_url``; ``GET /v3/refund/domestic/refunds/{out_refund_no}`` reads one
back. The result is a callback to ``notify_url``: an event ``id``, ``event_type``
``REFUND.SUCCESS`` / ``REFUND.ABNORMAL`` / ``REFUND.CLOSED`` and the refund as ``resource``
(``refund_status``, ``amount.refund`` asked for, ``amount.payer_refund`` that reached the payer —
less on a partial refund — and ``reason`` when it failed). WeChat encrypts ``resource`` and signs
with RSA; this interface signs with the shared-secret HMAC of :mod:`downstream.signing`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from downstream.client import SignedClient
from downstream.events import DownstreamEvent, EventKind, MalformedCallback, System, fen_to_yuan

REFUNDS_PATH = "/v3/refund/domestic/refunds"


@dataclass(frozen=True, slots=True)
class RefundOrder:
    request_id: str
    order_id: str
    amount: float
    order_total: float
    reason: str


@dataclass(frozen=True, slots=True)
class RefundReceipt:
    refund_id: str
    status: str
    """PROCESSING, SUCCESS, ABNORMAL or CLOSED."""


class PaymentCentre(Protocol):
    async def submit_refund(self, order: RefundOrder) -> RefundReceipt:
        """Submit a refund; the same ``request_id`` again returns the refund already made."""
        ...

    async def refund_status(self, request_id: str) -> RefundReceipt | None: ...

    async def close(self) -> None: ...


def fen(amount: float) -> int:
    return round(amount * 100)


class HttpPaymentCentre:
    """The payment centre at ``base_url`` (a shop's real one, or the embedded stand-in)."""

    def __init__(self, base_url: str, secret: str, notify_url: str) -> None:
        self.http = SignedClient(base_url, secret)
        self.notify_url = notify_url

    async def submit_refund(self, order: RefundOrder) -> RefundReceipt:
        answer = await self.http.post(
            REFUNDS_PATH,
            {
                "out_trade_no": order.order_id,
                "out_refund_no": order.request_id,
                "reason": order.reason[:80],
                "notify_url": self.notify_url,
                "amount": {"refund": fen(order.amount), "total": fen(order.order_total), "currency": "CNY"},
            },
        )
        return RefundReceipt(refund_id=str(answer.get("refund_id", "")), status=str(answer.get("status", "")))

    async def refund_status(self, request_id: str) -> RefundReceipt | None:
        answer = await self.http.get(f"{REFUNDS_PATH}/{request_id}")
        if not answer.get("refund_id"):
            return None
        return RefundReceipt(refund_id=str(answer["refund_id"]), status=str(answer.get("status", "")))

    async def close(self) -> None:
        await self.http.close()


def _time(value: Any, field: str) -> datetime:
    if not isinstance(value, str):
        raise MalformedCallback(f"{field} must be an RFC 3339 time")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise MalformedCallback(f"{field} must be an RFC 3339 time") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedCallback("the body is not JSON") from exc
    if not isinstance(data, dict):
        raise MalformedCallback("the body is not a JSON object")
    return data


def _text(data: dict[str, Any], field: str, *, max_length: int = 64) -> str:
    value = data.get(field)
    if not isinstance(value, str) or not value.strip() or len(value) > max_length:
        raise MalformedCallback(f"{field} is missing or not a short string")
    return value.strip()


def parse_payment_callback(body: bytes) -> DownstreamEvent:
    """A refund result notification as a :class:`DownstreamEvent` (:class:`MalformedCallback` if it is not one)."""
    data = _object(body)
    event_id = _text(data, "id")
    event_type = _text(data, "event_type")
    resource = data.get("resource")
    if not isinstance(resource, dict):
        raise MalformedCallback("resource must be an object")
    amount = resource.get("amount")
    if not isinstance(amount, dict):
        raise MalformedCallback("resource.amount must be an object")
    requested = fen_to_yuan(amount.get("refund"), "resource.amount.refund")
    status = _text(resource, "refund_status")
    facts: dict[str, Any] = {
        "refund_id": _text(resource, "refund_id"),
        "status": status,
        "requested": requested,
        "order_id": _text(resource, "out_trade_no"),
    }
    if event_type == "REFUND.SUCCESS" and status == "SUCCESS":
        refunded = fen_to_yuan(amount.get("payer_refund", amount.get("refund")), "resource.amount.payer_refund")
        facts.update(refunded=refunded, account=str(resource.get("user_received_account") or "")[:100])
        kind = EventKind.REFUND_SUCCEEDED
        if refunded + 0.005 < requested:
            kind = EventKind.REFUND_PARTIAL
            facts.update(shortfall=round(requested - refunded, 2), reason=str(resource.get("reason") or "")[:200])
        occurred = _time(resource.get("success_time") or data.get("create_time"), "resource.success_time")
    elif event_type in ("REFUND.ABNORMAL", "REFUND.CLOSED") and status in ("ABNORMAL", "CLOSED"):
        kind = EventKind.REFUND_FAILED
        facts["reason"] = str(resource.get("reason") or status)[:200]
        occurred = _time(data.get("create_time"), "create_time")
    else:
        raise MalformedCallback(f"event_type {event_type} with refund_status {status} is not a refund result")
    return DownstreamEvent(
        system=System.PAYMENT,
        key=event_id,
        kind=kind,
        occurred_at=occurred,
        request_id=_text(resource, "out_refund_no"),
        data=facts,
    )
