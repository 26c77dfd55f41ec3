"""A courier tracking and pick-up service on loopback in the style of the tracking-push APIs
(``downstream.courier``): subscriptions (``/poll``), pick-up bookings (``/order/borderapi.do``) and
work orders (``/workorder/create``) come in form-encoded; form-encoded, signed pushes go out —
every scan so far on a subscribed number, pick-up states (assigned, collected with a new waybill,
failed) and work-order answers — when a test says so or, with a ``pace``, by themselves (a booked
pick-up is assigned, collected and carried to the warehouse, whose stand-in is told)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import parse_qs, urlencode

from aiohttp import web

from downstream.courier import CODE_OF, STATE_NAMES, format_time
from downstream.events import ScanState
from standins.callbacks import CallbackSender, SentCallback, json_answer, signed_body
from standins.loopback import LoopbackServer

FORM = "application/x-www-form-urlencoded"
STEPS_AFTER_COLLECTION = (
    (ScanState.IN_TRANSIT, "【上海转运中心】已发出"),
    (ScanState.OUT_FOR_DELIVERY, "快递员正在派件"),
    (ScanState.SIGNED, "已签收"),
)


class CourierStandIn(LoopbackServer):
    def __init__(self, secret: str, *, pace: float = 0.0) -> None:
        super().__init__()
        self.secret = secret
        self.pace = pace
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.bookings: dict[str, dict[str, Any]] = {}
        self.work_orders: dict[str, dict[str, Any]] = {}
        self.callbacks = CallbackSender(secret)
        self.on_delivered: Callable[[str], Awaitable[None]] | None = None
        """Told the pick-up id when a return parcel it collected is signed for at the warehouse."""
        self._numbers = itertools.count(1)
        self._tasks = itertools.count(1)
        self._returns: dict[str, str] = {}
        """Waybill of a collected return → its pick-up id."""

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/poll", self._subscribe)
        app.router.add_post("/order/borderapi.do", self._order)
        app.router.add_post("/workorder/create", self._work_order)

    async def stop(self) -> None:
        await self.callbacks.close()
        await super().stop()

    async def _param(self, request: web.Request) -> tuple[dict[str, str], dict[str, Any]] | web.Response:
        body = await signed_body(request, self.secret)
        fields = {k: v[0] for k, v in parse_qs(body.decode("utf-8")).items()}
        try:
            param = json.loads(fields["param"])
        except (KeyError, ValueError):
            return json_answer({"result": False, "returnCode": "400", "message": "param 参数错误"})
        return fields, param

    async def _subscribe(self, request: web.Request) -> web.Response:
        parsed = await self._param(request)
        if isinstance(parsed, web.Response):
            return parsed
        _, param = parsed
        number = str(param.get("number", ""))
        callback = str((param.get("parameters") or {}).get("callbackurl", ""))
        if not number or not callback:
            return json_answer({"result": False, "returnCode": "400", "message": "number / callbackurl 缺失"})
        if number in self.subscriptions:
            return json_answer({"result": False, "returnCode": "501", "message": "重复订阅"})
        self.subscriptions[number] = {"company": param.get("company", "auto"), "callback": callback, "scans": []}
        if self.pace > 0:
            for step, (state, context) in enumerate(STEPS_AFTER_COLLECTION, start=1):
                self.callbacks.later(step * self.pace, partial(self.scan, number, state, context))
        return json_answer({"result": True, "returnCode": "200", "message": "提交成功"})

    async def _order(self, request: web.Request) -> web.Response:
        parsed = await self._param(request)
        if isinstance(parsed, web.Response):
            return parsed
        fields, param = parsed
        pickup_id = str(param.get("orderId", ""))
        if fields.get("method") == "cancel":
            if pickup_id in self.bookings:
                self.bookings[pickup_id]["status"] = "cancelled"
            return json_answer({"result": True, "returnCode": "200", "message": "取消成功"})
        if fields.get("method") != "bOrder" or not pickup_id or not param.get("callBackUrl"):
            return json_answer({"result": False, "returnCode": "400", "message": "参数错误"})
        booking = self.bookings.get(pickup_id)
        if booking is None or booking["status"] == "failed":
            booking = {**param, "taskId": f"T{next(self._tasks):08d}", "status": "booked"}
            self.bookings[pickup_id] = booking
            if self.pace > 0:
                self.callbacks.later(self.pace, lambda: self.pickup_event(pickup_id, "assigned"))
                self.callbacks.later(2 * self.pace, lambda: self.pickup_event(pickup_id, "collected"))
        return json_answer({"result": True, "returnCode": "200", "message": "下单成功",
                            "data": {"taskId": booking["taskId"], "orderId": pickup_id}})  # fmt: skip

    async def _work_order(self, request: web.Request) -> web.Response:
        parsed = await self._param(request)
        if isinstance(parsed, web.Response):
            return parsed
        _, param = parsed
        biz_id = str(param.get("bizId", ""))
        if not biz_id or not param.get("callBackUrl"):
            return json_answer({"result": False, "returnCode": "400", "message": "参数错误"})
        order = self.work_orders.setdefault(biz_id, {**param, "workOrderId": f"W{next(self._tasks):08d}"})
        if self.pace > 0 and order.get("answered") is None:
            order["answered"] = False
            answer = "已催促网点优先派送" if param.get("type") == "urge" else "包裹在转运中心，预计 1 天内更新"
            self.callbacks.later(self.pace, lambda: self.work_order_result(biz_id, answer))
        return json_answer({"result": True, "returnCode": "200", "workOrderId": order["workOrderId"]})

    # -- pushes --------------------------------------------------------------------------

    async def _push(self, url: str, param: dict[str, Any]) -> SentCallback:
        body = urlencode({"param": json.dumps(param, ensure_ascii=False, separators=(",", ":"))}).encode("ascii")
        return await self.callbacks.send(url, body, FORM)

    async def scan(
        self, number: str, state: ScanState, context: str, *, at: datetime | None = None, area: str = "上海市"
    ) -> SentCallback:
        """A new scan on a subscribed parcel: the push carries every scan so far, newest first."""
        subscription = self.subscriptions[number]
        code = CODE_OF[state]
        moment = format_time(at or datetime.now(UTC))
        subscription["scans"].append(
            {"time": moment, "ftime": moment, "context": context, "status": STATE_NAMES[code],
             "statusCode": code, "areaName": area}
        )  # fmt: skip
        scans = sorted(subscription["scans"], key=lambda s: s["time"], reverse=True)
        latest = scans[0]["statusCode"]
        param = {
            "status": "shutdown" if latest in ("3", "6", "4") else "polling",
            "billstatus": "check" if latest == "3" else "got",
            "message": "",
            "lastResult": {"message": "ok", "state": latest, "status": "200", "condition": "00",
                           "ischeck": "1" if latest == "3" else "0", "com": subscription["company"],
                           "nu": number, "data": scans},
        }  # fmt: skip
        sent = await self._push(subscription["callback"], param)
        pickup_id = self._returns.get(number)
        if state is ScanState.SIGNED and pickup_id and self.on_delivered is not None:
            await self.on_delivered(pickup_id)
        return sent

    async def pickup_event(
        self,
        pickup_id: str,
        event: str,
        *,
        reason: str | None = None,
        tracking_number: str | None = None,
        at: datetime | None = None,
    ) -> SentCallback:
        """``assigned``, ``collected`` (a new waybill unless given) or ``failed`` (with ``reason``)."""
        booking = self.bookings[pickup_id]
        status = {"assigned": "1", "collected": "10", "failed": "11"}[event]
        data: dict[str, Any] = {"orderId": pickup_id, "status": int(status),
                                "updateTime": format_time(at or datetime.now(UTC))}  # fmt: skip
        param: dict[str, Any] = {"status": status, "message": "", "kuaidicom": "shunfeng", "data": data}
        if event == "assigned":
            data.update(courierName="王师傅", courierMobile="13700001111")
        elif event == "collected":
            number = tracking_number or booking.get("kuaidinum") or f"SF13{next(self._numbers):010d}"
            booking["kuaidinum"] = number
            param["kuaidinum"] = number
            self._returns[number] = pickup_id
        else:
            data["failReason"] = reason or "客户不在家，电话无人接听"
        booking["status"] = {"assigned": "assigned", "collected": "collected", "failed": "failed"}[event]
        return await self._push(str(booking["callBackUrl"]), param)

    async def work_order_result(self, biz_id: str, result: str, *, at: datetime | None = None) -> SentCallback:
        order = self.work_orders[biz_id]
        order["answered"] = True
        param = {"bizId": biz_id, "type": order.get("type"), "kuaidinum": order.get("kuaidinum"),
                 "result": result, "updateTime": format_time(at or datetime.now(UTC))}  # fmt: skip
        return await self._push(str(order["callBackUrl"]), param)
