"""Courier tracking (快递查询 / 物流推送) and pick-ups (上门取件), in the style of the common Chinese
tracking-push APIs (Kuaidi100's subscribe-and-push): requests and pushes are form-encoded with
the payload as JSON in ``param``.

- ``POST /poll`` subscribes a tracking number (``company``, ``number``, ``parameters.callbackurl``);
  a repeated subscription answers ``returnCode`` 501 (重复订阅), which is success here. Every change
  is pushed to the callback: ``lastResult`` with ``nu``, ``com``, ``state`` and all scans so far
  (``data``: ``time`` in China time, ``context``, ``statusCode``): 1 揽收 collected, 0 在途 in
  transit, 5 派件 out for delivery, 3 签收 signed, 2 疑难 and 14 拒签 exception, 4 退签 and 6 退回
  returned to sender.
- ``POST /order/borderapi.do`` books (``method=bOrder``, ``orderId`` = our pick-up id) or cancels
  (``method=cancel``) a pick-up; its pushes carry ``data.orderId`` and ``status`` 1 已接单 (assigned,
  with the courier's name), 10 已取件 (collected, with the new waybill ``kuaidinum``), 11 揽货失败
  (failed, ``data.failReason``) or 99 已取消 (cancelled by the courier: also a failure).
- ``POST /workorder/create`` opens a work order on a parcel — ``type`` ``urge`` (催件) or
  ``inquiry`` (查件), ``bizId`` = our follow-up task — answered by a push with ``result``.

Kuaidi100 signs with MD5 over ``param`` and a salt; this interface signs the raw body with the
HMAC of :mod:`downstream.signing` instead.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal, Protocol
from urllib.parse import parse_qs

from downstream.client import DownstreamRefused, SignedClient
from downstream.events import DownstreamEvent, EventKind, MalformedCallback, ScanState, System

CHINA = timezone(timedelta(hours=8))
STATE_CODES: dict[str, ScanState] = {
    "1": ScanState.COLLECTED,
    "0": ScanState.IN_TRANSIT,
    "5": ScanState.OUT_FOR_DELIVERY,
    "3": ScanState.SIGNED,
    "2": ScanState.EXCEPTION,
    "14": ScanState.EXCEPTION,
    "4": ScanState.RETURNED_TO_SENDER,
    "6": ScanState.RETURNED_TO_SENDER,
}
STATE_NAMES = {"1": "揽收", "0": "在途", "5": "派件", "3": "签收", "2": "疑难", "14": "拒签", "4": "退签", "6": "退回"}
CODE_OF: dict[ScanState, str] = {
    ScanState.COLLECTED: "1",
    ScanState.IN_TRANSIT: "0",
    ScanState.OUT_FOR_DELIVERY: "5",
    ScanState.SIGNED: "3",
    ScanState.EXCEPTION: "2",
    ScanState.RETURNED_TO_SENDER: "6",
}
PICKUP_STATUSES = {"1": EventKind.PICKUP_ASSIGNED, "10": EventKind.PICKUP_COLLECTED, "11": EventKind.PICKUP_FAILED,
                   "99": EventKind.PICKUP_FAILED}  # fmt: skip
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True, slots=True)
class PickupBooking:
    pickup_id: str
    order_id: str
    name: str
    phone: str | None
    address: str
    date: str
    window_start: str
    window_end: str
    to_address: str
    """Where the parcel goes (the return warehouse)."""


class CourierTracking(Protocol):
    async def subscribe(self, tracking_number: str, company: str | None = None) -> None: ...

    async def book_pickup(self, booking: PickupBooking) -> str:
        """The courier's task id; the same ``pickup_id`` again is the same booking."""
        ...

    async def cancel_pickup(self, pickup_id: str, reason: str) -> None: ...

    async def work_order(
        self, followup_id: str, tracking_number: str, kind: Literal["urge", "inquiry"], note: str
    ) -> str: ...

    async def close(self) -> None: ...


class HttpCourier:
    def __init__(self, base_url: str, secret: str, key: str, callback_base: str) -> None:
        self.http = SignedClient(base_url, secret)
        self.key = key
        self.callback_base = callback_base.rstrip("/")

    async def _call(self, path: str, fields: dict[str, str], *, repeat_ok: bool = False) -> dict[str, Any]:
        answer = await self.http.post_form(path, fields)
        code = str(answer.get("returnCode", ""))
        if answer.get("result") is True or (repeat_ok and code == "501"):
            return answer
        raise DownstreamRefused(f"{path}: {code} {answer.get('message', '')}".strip())

    async def subscribe(self, tracking_number: str, company: str | None = None) -> None:
        param = {
            "company": company or "auto",
            "number": tracking_number,
            "key": self.key,
            "parameters": {"callbackurl": f"{self.callback_base}/tracking", "resultv2": "1"},
        }
        await self._call("/poll", {"schema": "json", "param": _json(param)}, repeat_ok=True)

    async def book_pickup(self, booking: PickupBooking) -> str:
        param = {
            "orderId": booking.pickup_id, "kuaidicom": "auto", "sendManName": booking.name,
            "sendManMobile": booking.phone or "", "sendManPrintAddr": booking.address,
            "recManPrintAddr": booking.to_address, "dayType": booking.date,
            "pickupStartTime": booking.window_start, "pickupEndTime": booking.window_end,
            "callBackUrl": f"{self.callback_base}/pickups", "remark": f"订单 {booking.order_id} 退货",
        }  # fmt: skip
        answer = await self._call("/order/borderapi.do", {"method": "bOrder", "key": self.key, "param": _json(param)},
                                  repeat_ok=True)  # fmt: skip
        data = answer.get("data") if isinstance(answer.get("data"), dict) else {}
        return str((data or {}).get("taskId", ""))

    async def cancel_pickup(self, pickup_id: str, reason: str) -> None:
        param = {"orderId": pickup_id, "cancelMsg": reason[:100]}
        await self._call("/order/borderapi.do", {"method": "cancel", "key": self.key, "param": _json(param)},
                         repeat_ok=True)  # fmt: skip

    async def work_order(
        self, followup_id: str, tracking_number: str, kind: Literal["urge", "inquiry"], note: str
    ) -> str:
        param = {"bizId": followup_id, "kuaidinum": tracking_number, "type": kind, "remark": note[:200],
                 "callBackUrl": f"{self.callback_base}/work-orders"}  # fmt: skip
        answer = await self._call("/workorder/create", {"key": self.key, "param": _json(param)}, repeat_ok=True)
        return str(answer.get("workOrderId", ""))

    async def close(self) -> None:
        await self.http.close()


def _json(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _param(body: bytes) -> dict[str, Any]:
    """The ``param`` field of a form-encoded push, as a JSON object."""
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=20)
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedCallback("the body is not a UTF-8 form") from exc
    raw = fields.get("param")
    if not raw or len(raw) != 1:
        raise MalformedCallback("the form has no single param field")
    try:
        data = json.loads(raw[0])
    except ValueError as exc:
        raise MalformedCallback("param is not JSON") from exc
    if not isinstance(data, dict):
        raise MalformedCallback("param is not a JSON object")
    return data


def _key(body: bytes) -> str:
    """Pushes have no event id: the same push delivered again is the same bytes."""
    return hashlib.sha256(body).hexdigest()[:32]


def _short(value: Any, name: str, max_length: int = 64) -> str:
    if not isinstance(value, str | int) or isinstance(value, bool) or not str(value).strip():
        raise MalformedCallback(f"{name} is missing")
    text = str(value).strip()
    if len(text) > max_length:
        raise MalformedCallback(f"{name} is too long")
    return text


def parse_time(value: Any, name: str) -> datetime:
    """``2026-12-01 10:00:00`` in China time (how these APIs write times)."""
    if not isinstance(value, str):
        raise MalformedCallback(f"{name} must be a time like 2026-12-01 10:00:00")
    try:
        return datetime.strptime(value.strip(), TIME_FORMAT).replace(tzinfo=CHINA)
    except ValueError as exc:
        raise MalformedCallback(f"{name} must be a time like 2026-12-01 10:00:00") from exc


def format_time(moment: datetime) -> str:
    return moment.astimezone(CHINA).strftime(TIME_FORMAT)


def parse_tracking_push(body: bytes) -> DownstreamEvent:
    param = _param(body)
    last = param.get("lastResult")
    if not isinstance(last, dict):
        raise MalformedCallback("lastResult must be an object")
    number = _short(last.get("nu"), "lastResult.nu")
    rows = last.get("data")
    if not isinstance(rows, list) or not rows or len(rows) > 200:
        raise MalformedCallback("lastResult.data must list 1–200 scans")
    scans: list[dict[str, Any]] = []
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise MalformedCallback(f"lastResult.data[{index}] must be an object")
        code = str(row.get("statusCode", last.get("state", "")))
        if code not in STATE_CODES:
            raise MalformedCallback(f"lastResult.data[{index}].statusCode {code!r} is not a tracking state")
        context = row.get("context")
        if not isinstance(context, str) or len(context) > 500:
            raise MalformedCallback(f"lastResult.data[{index}].context must be text")
        scans.append(
            {
                "time": parse_time(row.get("ftime") or row.get("time"), f"lastResult.data[{index}].time").isoformat(),
                "state": STATE_CODES[code].value,
                "context": context,
                "area": str(row.get("areaName") or "")[:100] or None,
            }
        )
    scans.sort(key=lambda s: str(s["time"]))
    return DownstreamEvent(
        system=System.COURIER,
        key=_key(body),
        kind=EventKind.TRACKING,
        occurred_at=datetime.fromisoformat(str(scans[-1]["time"])),
        tracking_number=number,
        data={"company": str(last.get("com") or "")[:32], "scans": scans},
    )


def parse_pickup_push(body: bytes) -> DownstreamEvent:
    param = _param(body)
    data = param.get("data")
    if not isinstance(data, dict):
        raise MalformedCallback("data must be an object")
    status = _short(param.get("status", data.get("status")), "status", 4)
    if status not in PICKUP_STATUSES:
        raise MalformedCallback(f"status {status} is not a pick-up state this interface takes")
    kind = PICKUP_STATUSES[status]
    facts: dict[str, Any] = {"status": status}
    if kind is EventKind.PICKUP_ASSIGNED:
        facts["courier"] = str(data.get("courierName") or "")[:50]
        facts["courier_phone"] = str(data.get("courierMobile") or "")[:20]
    elif kind is EventKind.PICKUP_COLLECTED:
        facts["tracking_number"] = _short(param.get("kuaidinum"), "kuaidinum")
        facts["company"] = str(param.get("kuaidicom") or "")[:32]
    else:
        facts["reason"] = str(data.get("failReason") or data.get("cancelMsg") or param.get("message") or "")[:200]
    return DownstreamEvent(
        system=System.COURIER,
        key=_key(body),
        kind=kind,
        occurred_at=parse_time(data.get("updateTime"), "data.updateTime"),
        pickup_id=_short(data.get("orderId"), "data.orderId"),
        tracking_number=facts.get("tracking_number"),
        data=facts,
    )


def parse_work_order_push(body: bytes) -> DownstreamEvent:
    param = _param(body)
    kind = param.get("type")
    if kind not in ("urge", "inquiry"):
        raise MalformedCallback("type must be urge or inquiry")
    result = param.get("result")
    if not isinstance(result, str) or not result.strip() or len(result) > 500:
        raise MalformedCallback("result must be text")
    return DownstreamEvent(
        system=System.COURIER,
        key=_key(body),
        kind=EventKind.WORK_ORDER_RESULT,
        occurred_at=parse_time(param.get("updateTime"), "updateTime"),
        followup_id=_short(param.get("bizId"), "bizId"),
        tracking_number=_short(param.get("kuaidinum"), "kuaidinum"),
        data={"type": kind, "result": result.strip()},
    )
