"""A warehouse (WMS) on loopback speaking the protocol of ``downstream.warehouse``: intercepts,
expedites, outbound dispatches (resends and exchanges) and announced returns go in; signed
callbacks come back — intercept and expedite results, ``outbound.shipped`` with a tracking
number, ``return.received`` and ``return.qc`` (pass, or fail with links to photos it serves) —
when a test says so or, with a ``pace``, by themselves (a return once its parcel has arrived:
:meth:`WarehouseStandIn.parcel_arrived`, which the courier stand-in calls)."""

from __future__ import annotations

import io
import itertools
import json
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from PIL import Image, ImageDraw

from standins.callbacks import CallbackSender, SentCallback, json_answer, signed_body
from standins.loopback import LoopbackServer

KINDS = ("intercepts", "expedites", "outbounds", "returns")


class WarehouseStandIn(LoopbackServer):
    def __init__(self, secret: str, *, pace: float = 0.0) -> None:
        super().__init__()
        self.secret = secret
        self.pace = pace
        self.orders: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in KINDS}
        """What the gateway sent, by kind and ``request_no`` (repeats replace nothing)."""
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.callbacks = CallbackSender(secret)
        self.photos: dict[str, bytes] = {}
        self.photo_fetches = 0
        self._ids = itertools.count(1)
        self._events = itertools.count(1)
        self._waybills = itertools.count(1)

    def routes(self, app: web.Application) -> None:
        for kind in KINDS:
            app.router.add_post(f"/wms/v1/{kind}", self._take)
        app.router.add_get("/wms/v1/photos/{name}", self._photo)

    async def stop(self) -> None:
        await self.callbacks.close()
        await super().stop()

    async def _take(self, request: web.Request) -> web.Response:
        body = await signed_body(request, self.secret)
        kind = request.path.rsplit("/", 1)[-1]
        try:
            data = json.loads(body)
            number = str(data["request_no"])
            str(data["notify_url"])
        except (ValueError, KeyError, TypeError):
            return json_answer({"code": "PARAM_ERROR", "message": "参数错误"}, 400)
        self.calls.append((kind, data))
        known = self.orders[kind].get(number)
        if known is None:
            known = {**data, "ticket_id": f"WMS{next(self._ids):08d}"}
            self.orders[kind][number] = known
            self._autoplay(kind, number)
        return json_answer({"ticket_id": known["ticket_id"], "accepted": True})

    def _autoplay(self, kind: str, number: str) -> None:
        if self.pace <= 0:
            return
        if kind == "intercepts":
            action = self.orders[kind][number].get("action")
            result = "redirected" if action == "redirect" else "intercepted"
            self.callbacks.later(self.pace, lambda: self.intercept_result(number, result))
        elif kind == "expedites":
            self.callbacks.later(self.pace, lambda: self.expedite_result(number, "accepted"))
        elif kind == "outbounds":
            self.callbacks.later(self.pace, lambda: self.shipped(number))

    async def parcel_arrived(self, request_no: str) -> None:
        """The courier delivered a return parcel here: received, then checked (with a pace)."""
        if self.pace > 0 and request_no in self.orders["returns"]:
            self.callbacks.later(self.pace, lambda: self.received(request_no))
            self.callbacks.later(2 * self.pace, lambda: self.quality_check(request_no, passed=True))

    async def _photo(self, request: web.Request) -> web.Response:
        await signed_body(request, self.secret)
        data = self.photos.get(request.match_info["name"])
        if data is None:
            return json_answer({"code": "NOT_FOUND", "message": "no such photo"}, 404)
        self.photo_fetches += 1
        return web.Response(body=data, content_type="image/png")

    def _notify_url(self, kind: str, request_no: str) -> str:
        return str(self.orders[kind][request_no]["notify_url"])

    async def report(
        self, kind: str, request_no: str, event_type: str, data: dict[str, Any], *, at: datetime | None = None
    ) -> SentCallback:
        """Send one signed callback about what the gateway sent as ``kind`` with this ``request_no``."""
        order = self.orders[kind][request_no]
        event = {
            "event_id": f"WE{next(self._events):010d}",
            "event_type": event_type,
            "request_no": request_no,
            "attach": order.get("attach", "request"),
            "occurred_at": (at or datetime.now(UTC)).isoformat(timespec="milliseconds"),
            "data": {"ticket_id": order["ticket_id"], **data},
        }
        body = json.dumps(event, ensure_ascii=False).encode("utf-8")
        return await self.callbacks.send(self._notify_url(kind, request_no), body, "application/json")

    async def intercept_result(self, request_no: str, result: str, reason: str | None = None) -> SentCallback:
        return await self.report("intercepts", request_no, "intercept.result", {"result": result, "reason": reason})

    async def expedite_result(
        self, request_no: str, result: str, *, tracking_number: str | None = None, note: str | None = None
    ) -> SentCallback:
        data = {"result": result, "note": note or ("已安排优先拣货出库" if result != "failed" else "库存不足")}
        if tracking_number:
            data.update(tracking_number=tracking_number, carrier="SF")
        return await self.report("expedites", request_no, "expedite.result", data)

    def waybill(self) -> str:
        return f"SF14{next(self._waybills):010d}"

    async def shipped(self, request_no: str, tracking_number: str | None = None) -> SentCallback:
        number = tracking_number or self.waybill()
        return await self.report(
            "outbounds", request_no, "outbound.shipped", {"carrier": "SF", "tracking_number": number}
        )

    async def received(self, request_no: str, *, at: datetime | None = None) -> SentCallback:
        code = str(self.orders["returns"][request_no].get("return_code", ""))
        return await self.report("returns", request_no, "return.received", {"return_code": code}, at=at)

    async def quality_check(
        self, request_no: str, *, passed: bool, reason: str | None = None, photos: int = 0, at: datetime | None = None
    ) -> SentCallback:
        links = [self._make_photo(request_no, n) for n in range(photos)]
        data: dict[str, Any] = {"result": "pass" if passed else "fail", "photos": links}
        if reason:
            data["reason"] = reason
        return await self.report("returns", request_no, "return.qc", data, at=at)

    def _make_photo(self, request_no: str, number: int) -> str:
        image = Image.new("RGB", (320, 240), (235, 230, 220))
        draw = ImageDraw.Draw(image)
        draw.rectangle((40, 40, 280, 200), outline=(120, 60, 40), width=4)
        draw.line((60, 60, 260, 180), fill=(200, 30, 30), width=6)
        draw.text((50, 210), f"QC {request_no} #{number + 1}", fill=(0, 0, 0))
        out = io.BytesIO()
        image.save(out, format="PNG")
        name = f"{request_no}-{number + 1}.png"
        self.photos[name] = out.getvalue()
        return f"{self.base_url}/wms/v1/photos/{name}"
