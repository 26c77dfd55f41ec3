"""A payment centre on loopback speaking the refund protocol of ``downstream.payment``: it takes
refund submissions (idempotent by ``out_refund_no``), answers status queries, and calls
``notify_url`` back with signed results — success, failure with a reason, or a partial refund —
when told (:meth:`PaymentCentreStandIn.settle`) or, with a ``pace``, by itself."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from standins.callbacks import CallbackSender, SentCallback, json_answer, signed_body
from standins.loopback import LoopbackServer

REFUNDS = "/v3/refund/domestic/refunds"


class PaymentCentreStandIn(LoopbackServer):
    def __init__(self, secret: str, *, pace: float = 0.0) -> None:
        super().__init__()
        self.secret = secret
        self.pace = pace
        self.refunds: dict[str, dict[str, Any]] = {}
        self.submissions: list[dict[str, Any]] = []
        self.callbacks = CallbackSender(secret)
        self._ids = itertools.count(1)

    def routes(self, app: web.Application) -> None:
        app.router.add_post(REFUNDS, self._submit)
        app.router.add_get(REFUNDS + "/{out_refund_no}", self._query)

    async def stop(self) -> None:
        await self.callbacks.close()
        await super().stop()

    async def _submit(self, request: web.Request) -> web.Response:
        body = await signed_body(request, self.secret)
        try:
            data = json.loads(body)
            number = str(data["out_refund_no"])
            amount = data["amount"]
            refund, total = int(amount["refund"]), int(amount["total"])
            notify_url = str(data["notify_url"])
        except (ValueError, KeyError, TypeError):
            return json_answer({"code": "PARAM_ERROR", "message": "参数错误"}, 400)
        if refund <= 0 or refund > total:
            return json_answer({"code": "INVALID_REQUEST", "message": "退款金额不合法"}, 400)
        self.submissions.append(data)
        existing = self.refunds.get(number)
        if existing is None:  # the same out_refund_no again is the same refund
            existing = {
                "refund_id": f"50300{next(self._ids):09d}",
                "out_refund_no": number,
                "out_trade_no": str(data.get("out_trade_no", "")),
                "refund": refund,
                "total": total,
                "notify_url": notify_url,
                "status": "PROCESSING",
                "create_time": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            self.refunds[number] = existing
            if self.pace > 0:
                self.callbacks.later(self.pace, lambda: self.settle(number))
        return json_answer(self._view(existing))

    async def _query(self, request: web.Request) -> web.Response:
        await signed_body(request, self.secret)
        refund = self.refunds.get(request.match_info["out_refund_no"])
        if refund is None:
            return json_answer({"code": "RESOURCE_NOT_EXISTS", "message": "退款单不存在"}, 404)
        return json_answer(self._view(refund))

    @staticmethod
    def _view(refund: dict[str, Any]) -> dict[str, Any]:
        return {
            "refund_id": refund["refund_id"],
            "out_refund_no": refund["out_refund_no"],
            "status": refund["status"],
            "create_time": refund["create_time"],
            "amount": {"refund": refund["refund"], "total": refund["total"], "currency": "CNY"},
        }

    async def settle(
        self, out_refund_no: str, outcome: str = "success", *, reason: str | None = None, paid_fen: int | None = None
    ) -> SentCallback:
        """Report the refund's result: ``success``, ``partial`` (``paid_fen`` reached the payer) or ``failed``."""
        refund = self.refunds[out_refund_no]
        now = datetime.now(UTC).isoformat(timespec="seconds")
        status = "SUCCESS" if outcome in ("success", "partial") else "ABNORMAL"
        refund["status"] = status
        paid = (
            refund["refund"] if outcome == "success" else (paid_fen if paid_fen is not None else refund["refund"] // 2)
        )
        resource: dict[str, Any] = {
            "out_trade_no": refund["out_trade_no"],
            "out_refund_no": out_refund_no,
            "refund_id": refund["refund_id"],
            "refund_status": status,
            "amount": {"total": refund["total"], "refund": refund["refund"], "payer_total": refund["total"],
                       "payer_refund": paid if status == "SUCCESS" else 0},
            "user_received_account": "支付用户零钱",
        }  # fmt: skip
        if status == "SUCCESS":
            resource["success_time"] = now
        if reason or outcome != "success":
            resource["reason"] = reason or ("部分退款：优惠券部分不退" if outcome == "partial" else "用户银行卡已注销")
        event = {
            "id": f"EV-{refund['refund_id']}-{len(self.callbacks.sent) + 1}",
            "create_time": now,
            "resource_type": "refund",
            "event_type": "REFUND.SUCCESS" if status == "SUCCESS" else "REFUND.ABNORMAL",
            "summary": "退款成功" if status == "SUCCESS" else "退款异常",
            "resource": resource,
        }
        body = json.dumps(event, ensure_ascii=False).encode("utf-8")
        return await self.callbacks.send(refund["notify_url"], body, "application/json")
