"""The warehouse (仓库 / WMS): intercepting or redirecting a parcel, expediting an order (the
bot's urges), dispatching a resend or an exchange, and receiving and checking returns.

Wire protocol (JSON, signed both ways with :mod:`downstream.signing`): ``POST /wms/v1/intercepts``,
``/wms/v1/expedites``, ``/wms/v1/outbounds`` and ``/wms/v1/returns``, each with a ``request_no``
(our after-sales request or follow-up task id: the idempotency key), an ``attach`` the warehouse
echoes back (``request`` or ``followup``: what ``request_no`` names) and a ``notify_url``. Results
come back as callbacks ``{"event_id", "event_type", "request_no", "attach", "occurred_at",
"data"}`` with ``event_type`` ``intercept.result``, ``expedite.result``, ``outbound.shipped``,
``return.received`` or ``return.qc`` (``data.result`` ``pass`` / ``fail``, ``data.photos`` links
to the inspector's photos, fetched with a signed GET).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from downstream.client import SignedClient
from downstream.events import DownstreamEvent, EventKind, MalformedCallback, System

Attach = Literal["request", "followup"]


@dataclass(frozen=True, slots=True)
class Receiver:
    name: str
    phone: str | None
    address: str


@dataclass(frozen=True, slots=True)
class InterceptOrder:
    request_no: str
    attach: Attach
    order_id: str
    action: Literal["intercept", "redirect"]
    reason: str
    address: str | None = None
    """The new address of a redirect."""


@dataclass(frozen=True, slots=True)
class ExpediteOrder:
    request_no: str
    order_id: str
    note: str
    due_at: datetime
    attach: Attach = "followup"


@dataclass(frozen=True, slots=True)
class OutboundOrder:
    request_no: str
    order_id: str
    kind: Literal["resend", "exchange"]
    items: list[dict[str, Any]]
    receiver: Receiver


@dataclass(frozen=True, slots=True)
class ReturnNotice:
    request_no: str
    order_id: str
    return_code: str
    items: list[dict[str, Any]] = field(default_factory=list)


class Warehouse(Protocol):
    async def intercept(self, order: InterceptOrder) -> str:
        """The warehouse's ticket id; the outcome comes by callback."""
        ...

    async def expedite(self, order: ExpediteOrder) -> str: ...

    async def dispatch(self, order: OutboundOrder) -> str: ...

    async def expect_return(self, notice: ReturnNotice) -> str: ...

    async def fetch_photo(self, url: str, *, max_bytes: int) -> tuple[bytes, str]: ...

    async def close(self) -> None: ...


class HttpWarehouse:
    def __init__(self, base_url: str, secret: str, notify_url: str) -> None:
        self.http = SignedClient(base_url, secret)
        self.notify_url = notify_url

    async def _post(self, path: str, payload: dict[str, Any]) -> str:
        answer = await self.http.post(path, {**payload, "notify_url": self.notify_url})
        return str(answer.get("ticket_id", ""))

    async def intercept(self, order: InterceptOrder) -> str:
        return await self._post(
            "/wms/v1/intercepts",
            {"request_no": order.request_no, "attach": order.attach, "order_id": order.order_id,
             "action": order.action, "reason": order.reason[:200], "address": order.address},
        )  # fmt: skip

    async def expedite(self, order: ExpediteOrder) -> str:
        return await self._post(
            "/wms/v1/expedites",
            {"request_no": order.request_no, "attach": order.attach, "order_id": order.order_id,
             "note": order.note[:200], "due_at": order.due_at.isoformat()},
        )  # fmt: skip

    async def dispatch(self, order: OutboundOrder) -> str:
        return await self._post(
            "/wms/v1/outbounds",
            {"request_no": order.request_no, "attach": "request", "order_id": order.order_id, "kind": order.kind,
             "items": order.items, "receiver": {"name": order.receiver.name, "phone": order.receiver.phone,
                                                "address": order.receiver.address}},
        )  # fmt: skip

    async def expect_return(self, notice: ReturnNotice) -> str:
        return await self._post(
            "/wms/v1/returns",
            {"request_no": notice.request_no, "attach": "request", "order_id": notice.order_id,
             "return_code": notice.return_code, "items": notice.items},
        )  # fmt: skip

    async def fetch_photo(self, url: str, *, max_bytes: int) -> tuple[bytes, str]:
        return await self.http.fetch(url, max_bytes=max_bytes)

    async def close(self) -> None:
        await self.http.close()


_RESULTS: dict[str, tuple[str, ...]] = {
    "intercept.result": ("intercepted", "redirected", "failed"),
    "expedite.result": ("shipped", "accepted", "failed"),
    "return.qc": ("pass", "fail"),
}


def _string(data: dict[str, Any], name: str, *, max_length: int = 64, required: bool = True) -> str | None:
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > max_length:
        raise MalformedCallback(f"{name} is missing or not a short string")
    return value.strip()


def parse_warehouse_callback(body: bytes) -> DownstreamEvent:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedCallback("the body is not JSON") from exc
    if not isinstance(data, dict):
        raise MalformedCallback("the body is not a JSON object")
    event_id = _string(data, "event_id")
    event_type = _string(data, "event_type")
    request_no = _string(data, "request_no")
    attach = data.get("attach", "request")
    if attach not in ("request", "followup"):
        raise MalformedCallback("attach must be request or followup")
    raw_time = _string(data, "occurred_at")
    try:
        occurred = datetime.fromisoformat(str(raw_time).replace("Z", "+00:00"))
    except ValueError as exc:
        raise MalformedCallback("occurred_at must be an ISO 8601 time") from exc
    occurred = occurred if occurred.tzinfo else occurred.replace(tzinfo=UTC)
    facts = data.get("data", {})
    if not isinstance(facts, dict):
        raise MalformedCallback("data must be an object")
    result = facts.get("result")
    if event_type in _RESULTS and result not in _RESULTS[str(event_type)]:
        raise MalformedCallback(f"data.result of {event_type} must be one of {', '.join(_RESULTS[str(event_type)])}")
    clean: dict[str, Any] = {"result": result} if result is not None else {}
    for name in ("reason", "note", "carrier", "tracking_number", "return_code", "ticket_id"):
        if name in facts and facts[name] is not None:
            clean[name] = _string(facts, name, max_length=200)
    kinds = {
        "intercept.result": EventKind.INTERCEPT_RESULT,
        "expedite.result": EventKind.EXPEDITE_RESULT,
        "outbound.shipped": EventKind.OUTBOUND_SHIPPED,
        "return.received": EventKind.RETURN_RECEIVED,
    }
    if event_type == "return.qc":
        kind = EventKind.QC_PASSED if result == "pass" else EventKind.QC_FAILED
        photos = facts.get("photos", [])
        if (
            not isinstance(photos, list)
            or len(photos) > 10
            or not all(isinstance(p, str) and p.startswith(("http://", "https://")) and len(p) < 500 for p in photos)
        ):
            raise MalformedCallback("data.photos must be a list of at most 10 http(s) links")
        clean["photos"] = photos
    elif event_type in kinds:
        kind = kinds[str(event_type)]
    else:
        raise MalformedCallback(f"unknown event_type {event_type}")
    if kind is EventKind.OUTBOUND_SHIPPED and "tracking_number" not in clean:
        raise MalformedCallback("outbound.shipped needs data.tracking_number")
    return DownstreamEvent(
        system=System.WAREHOUSE,
        key=str(event_id),
        kind=kind,
        occurred_at=occurred,
        request_id=request_no if attach == "request" else None,
        followup_id=request_no if attach == "followup" else None,
        tracking_number=clean.get("tracking_number"),
        data=clean,
    )
