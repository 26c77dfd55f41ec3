"""Sending what is due to the downstream systems, and the loop that does it.

What is due is read from the records themselves, so nothing the bot, an agent or a callback wrote
can be missed: a request with the payment centre gets its refund submitted; an approved return
is announced to the warehouse; a resend, or an exchange whose goods came back, is dispatched; an
agent's intercept goes to the warehouse; a pick-up is geocoded and booked with the courier (again
after a rebooking) or cancelled there when its request was withdrawn; a parcel to follow is
subscribed; an open follow-up task goes to whoever keeps the promise (the warehouse for urges on
orders not shipped, the courier's work orders for parcels on their way and inquiries, the payment
centre's status for a refund being urged).

Each call is recorded in ``downstream_jobs`` under a key (``refund:<request>``, ``book:<pick-up>:
<date>`` …) and carries the same key downstream as its idempotency key: a call whose answer was
lost is made again and the system answers with what it did the first time. A system that is down
is retried with a growing delay; one that refuses is not retried, and a refused refund goes to a
person. One gateway process at a time dispatches (a lease); callbacks are applied by whichever
process receives them.

Knows the downstream interfaces, never their wire formats.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from pymongo.asynchronous.database import AsyncDatabase

from backoffice.followups import FollowUp, FollowUpKind, FollowUps
from backoffice.fulfilment import MONEY_TYPES, Fulfilment
from backoffice.lifecycle import TicketType
from backoffice.routing.fleet import GeoPoint
from backoffice.routing.pickups import Pickup, PickupStatus, PickupStore
from downstream import DownstreamSystems
from downstream.client import DownstreamRefused, DownstreamUnavailable
from downstream.courier import PickupBooking
from downstream.payment import RefundOrder
from downstream.warehouse import ExpediteOrder, InterceptOrder, OutboundOrder, Receiver, ReturnNotice
from shop import OrderLookup
from shop.aftersales import GOODS_BACK, STEP_LABELS, AfterSalesRequest, AfterSalesService, RequestType, Step
from store.leases import Leases

log = logging.getLogger(__name__)

LEASE = "downstream:dispatch"
MAX_RETRY_SECONDS = 300.0
RETURN_ADDRESS = "上海市闵行区莘庄工业区申富路 618 号 售后退货中心"


def _now_ms() -> int:
    return int(time.time() * 1000)


class Dispatcher:
    def __init__(
        self,
        db: AsyncDatabase[dict[str, Any]],
        systems: DownstreamSystems,
        *,
        aftersales: AfterSalesService,
        followups: FollowUps,
        pickups: PickupStore,
        orders: OrderLookup,
        fulfilment: Fulfilment,
        leases: Leases | None = None,
        return_address: str = RETURN_ADDRESS,
    ) -> None:
        self.jobs = db["downstream_jobs"]
        self.systems = systems
        self.aftersales = aftersales
        self.followups = followups
        self.pickups = pickups
        self.orders = orders
        self.fulfilment = fulfilment
        self.leases = leases
        self.return_address = return_address

    async def ensure_indexes(self) -> None:
        await self.jobs.create_index("status")

    # -- one pass ------------------------------------------------------------------------

    async def run_once(self, lease_seconds: float = 30.0) -> int:
        """Send everything due; the number of calls made (0 when another process holds the lease)."""
        if self.leases is not None and not await self.leases.try_acquire(LEASE, lease_seconds):
            return 0
        calls = 0
        calls += await self._geocode()
        for request in await self.aftersales.in_status(
            Step.PAYMENT_PROCESSING, Step.AWAITING_RETURN, Step.RESENDING, Step.GOODS_RECEIVED, Step.APPROVED
        ):
            calls += await self._request_work(request)
        for pickup in await self.pickups.open_all():
            if pickup.courier is None or pickup.courier.get("booked_for") != pickup.date:
                calls += await self._job(f"book:{pickup.pickup_id}:{pickup.date}", self._book, pickup)
        async for doc in self.pickups.pickups.find(
            {"status": PickupStatus.CANCELLED.value, "courier.booked_for": {"$exists": True}}
        ):
            pickup_id = str(doc["_id"])
            calls += await self._job(
                f"cancel:{pickup_id}", self.systems.courier.cancel_pickup, pickup_id, "客户撤回售后申请"
            )
        for task in await self.followups.open_tasks():
            calls += await self._job(f"followup:{task.id}", self._followup, task)
        async for parcel in self.fulfilment.parcels.find({"subscribed": False}):
            number = str(parcel["_id"])
            calls += await self._job(f"subscribe:{number}", self._subscribe, parcel)
        return calls

    async def _request_work(self, request: AfterSalesRequest) -> int:
        status, kind = request.status, request.type
        if status is Step.PAYMENT_PROCESSING and kind in MONEY_TYPES:
            return await self._job(f"refund:{request.id}", self._refund, request)
        if status is Step.AWAITING_RETURN and kind in GOODS_BACK:
            return await self._job(f"return:{request.id}", self._announce_return, request)
        if (status is Step.RESENDING and kind is RequestType.RESEND and not request.details.get("tracking_number")) or (
            status is Step.GOODS_RECEIVED and kind is RequestType.EXCHANGE
        ):
            return await self._job(f"outbound:{request.id}", self._outbound, request)
        if status is Step.APPROVED and request.details.get("intercept"):
            return await self._job(f"intercept:{request.id}", self._intercept, request)
        return 0

    async def _job(self, key: str, call: Callable[..., Awaitable[Any]], *args: Any) -> int:
        """Make the call unless it was made (or refused), or is waiting for its retry time."""
        doc = await self.jobs.find_one({"_id": key})
        if doc is not None and (doc["status"] != "retry" or int(doc.get("next_ms", 0)) > _now_ms()):
            return 0
        attempts = int((doc or {}).get("attempts", 0)) + 1
        record: dict[str, Any] = {"attempts": attempts, "at": datetime.now(UTC).isoformat()}
        try:
            answer = await call(*args)
        except DownstreamUnavailable as exc:
            delay = min(MAX_RETRY_SECONDS, 2.0**attempts)
            record.update(status="retry", next_ms=_now_ms() + int(delay * 1000), error=exc.message)
            log.warning("downstream call %s failed (attempt %d, again in %.0f s): %s", key, attempts, delay, exc)
        except DownstreamRefused as exc:
            record.update(status="refused", error=exc.message)
            log.error("downstream call %s refused: %s", key, exc)
            await self._refused(key, exc.message)
        else:
            record.update(status="done", answer=str(answer)[:200] if answer is not None else None)
        await self.jobs.update_one({"_id": key}, {"$set": record}, upsert=True)
        return 1

    async def job(self, key: str) -> dict[str, Any] | None:
        return await self.jobs.find_one({"_id": key})

    async def _refused(self, key: str, why: str) -> None:
        kind, _, subject = key.partition(":")
        if kind != "refund":
            return
        request = await self.aftersales.get(subject)
        if request is not None and request.open and self.fulfilment.tickets is not None:
            await self.fulfilment._ticket(
                request, TicketType.REFUND, f"{request.id} 支付中心拒绝退款：{why}", "system:payment_centre"
            )

    # -- the calls -----------------------------------------------------------------------

    async def _geocode(self) -> int:
        done = 0
        for pickup in await self.pickups.unlocated():
            found = await self.systems.geocoder.geocode(pickup.address)
            if found is None:
                await self.pickups.update(pickup.pickup_id, {"location_precision": "none"})
                continue
            await self.pickups.set_location(
                pickup.pickup_id,
                GeoPoint(lat=found.lat, lon=found.lon),
                precision=found.precision.value,
                region=found.region,
            )
            done += 1
        return done

    async def _refund(self, request: AfterSalesRequest) -> str:
        order = await self.orders.get(request.order_id)
        amount = request.amount or (order.amount if order else 0.0)
        receipt = await self.systems.payment.submit_refund(
            RefundOrder(
                request_id=request.id,
                order_id=request.order_id,
                amount=amount,
                order_total=max(order.amount if order else amount, amount),
                reason=request.reason or request.type_label("zh"),
            )
        )
        return f"{receipt.refund_id} {receipt.status}"

    async def _announce_return(self, request: AfterSalesRequest) -> str:
        return await self.systems.warehouse.expect_return(
            ReturnNotice(
                request_no=request.id,
                order_id=request.order_id,
                return_code=str(request.details.get("return_code") or "RT" + request.id[2:]),
                items=request.items,
            )
        )

    async def _receiver(self, order_id: str) -> Receiver:
        order = await self.orders.get(order_id)
        if order is None:
            raise DownstreamRefused(f"order {order_id} is gone")
        return Receiver(name=order.customer.name, phone=order.customer.phone, address=order.address)

    async def _outbound(self, request: AfterSalesRequest) -> str:
        items = request.items
        if request.type is RequestType.EXCHANGE and request.details.get("spec"):
            items = [{**i, "spec": request.details["spec"]} for i in items]
        return await self.systems.warehouse.dispatch(
            OutboundOrder(
                request_no=request.id,
                order_id=request.order_id,
                kind="exchange" if request.type is RequestType.EXCHANGE else "resend",
                items=items,
                receiver=await self._receiver(request.order_id),
            )
        )

    async def _intercept(self, request: AfterSalesRequest) -> str:
        return await self.systems.warehouse.intercept(
            InterceptOrder(
                request_no=request.id,
                attach="request",
                order_id=request.order_id,
                action="intercept",
                reason=request.reason or "拦截退款",
            )
        )

    async def _book(self, pickup: Pickup) -> str:
        task_id = await self.systems.courier.book_pickup(
            PickupBooking(
                pickup_id=pickup.pickup_id,
                order_id=pickup.order_id,
                name=pickup.customer_name,
                phone=pickup.phone,
                address=pickup.address,
                date=pickup.date,
                window_start=pickup.window_start,
                window_end=pickup.window_end,
                to_address=self.return_address,
            )
        )
        courier = {**(pickup.courier or {}), "task_id": task_id, "booked_for": pickup.date}
        await self.pickups.update(pickup.pickup_id, {"courier": courier})
        return task_id

    async def _subscribe(self, parcel: dict[str, Any]) -> str:
        await self.systems.courier.subscribe(str(parcel["_id"]), str(parcel.get("company") or "") or None)
        await self.fulfilment.parcels.update_one({"_id": parcel["_id"]}, {"$set": {"subscribed": True}})
        return "subscribed"

    async def _followup(self, task: FollowUp) -> str:
        if task.kind is FollowUpKind.WAREHOUSE_EXPEDITE:
            return await self.systems.warehouse.expedite(
                ExpediteOrder(
                    request_no=task.id, order_id=task.order_id, note=task.note or "客户催发货", due_at=task.due_at
                )
            )
        if task.kind in (FollowUpKind.COURIER_EXPEDITE, FollowUpKind.COURIER_INQUIRY):
            number = await self._waybill(task)
            kind: Literal["urge", "inquiry"] = "urge" if task.kind is FollowUpKind.COURIER_EXPEDITE else "inquiry"
            return await self.systems.courier.work_order(task.id, number, kind, task.note or "")
        if task.kind is FollowUpKind.ORDER_REDIRECT:
            return await self.systems.warehouse.intercept(
                InterceptOrder(
                    request_no=task.id,
                    attach="followup",
                    order_id=task.order_id,
                    action="redirect",
                    reason=task.note or "改派",
                    address=str(task.data.get("address") or ""),
                )
            )
        return await self._request_expedite(task)

    async def _waybill(self, task: FollowUp) -> str:
        """The parcel a courier work order is about: the task's, the order's own, the order's parcel
        we follow (an expedited order's), or the order number."""
        if task.data.get("tracking_number"):
            return str(task.data["tracking_number"])
        order = await self.orders.get(task.order_id)
        extra = (order.model_extra or {}) if order is not None else {}
        if extra.get("tracking_number"):
            return str(extra["tracking_number"])
        followed = await self.fulfilment.parcels.find_one({"order_id": task.order_id, "kind": "order"}, {"_id": 1})
        return str(followed["_id"]) if followed is not None else task.order_id

    async def _request_expedite(self, task: FollowUp) -> str:
        """An urged request goes to whoever holds it now, as the urge flow told the customer: the
        courier for a parcel on its way, the warehouse for goods to check or send, the payment
        centre's status for a refund, finance's ticket for an invoice, the reviewer's ticket (the
        urge flow raised it) for a decision; goods not yet sent back have no one to hurry."""
        request = await self.aftersales.get(task.request_id) if task.request_id else None
        if request is None or not request.open:
            await self.followups.close(task.id, note="申请已结束")
            return "closed"
        status = request.status
        if status is Step.PAYMENT_PROCESSING:
            receipt = await self.systems.payment.refund_status(request.id)
            answer = receipt.status if receipt else "未找到"
            await self.followups.close(task.id, note=f"支付中心：{answer}", result=answer)
            return answer
        waybill = request.parcel_on_its_way()
        if waybill is not None:  # the courier has it: hurry the parcel (its answer reaches the customer)
            return await self.systems.courier.work_order(task.id, waybill, "urge", f"售后单 {request.id} 客户催促")
        with_warehouse = (
            status is Step.GOODS_RECEIVED
            or status is Step.RESENDING
            or (status is Step.APPROVED and request.type is RequestType.RESEND)
            or (status is Step.APPROVED and bool(request.details.get("intercept")))
        )
        if with_warehouse:
            return await self.systems.warehouse.expedite(
                ExpediteOrder(
                    request_no=task.id,
                    order_id=request.order_id,
                    note=f"售后单 {request.id} 客户催促（{request.type_label('zh')}，{STEP_LABELS[status]['zh']}）",
                    due_at=task.due_at,
                )
            )
        if status is Step.ISSUING:
            return await self._to_finance(task, request)
        if status is Step.AWAITING_RETURN or (status is Step.APPROVED and request.type in GOODS_BACK):
            await self.followups.close(task.id, note="等待客户寄回或上门取件：无需下游加急")
            return "waiting for the goods"
        if status is Step.APPROVED:  # approved money: the refund is submitted on this very pass
            await self.followups.close(task.id, note="已通过，退款提交支付中心")
            return "to the payment centre"
        await self.followups.close(task.id, note="审核中：已随工单加急")  # the urge raised the ticket itself
        return "with the reviewer"

    async def _to_finance(self, task: FollowUp, request: AfterSalesRequest) -> str:
        """An invoice being issued has no downstream system here: its ticket (opened now if there is
        none) goes up the finance queue, where a person issues it."""
        desk = self.fulfilment.tickets
        if desk is None:
            log.error("invoice urge %s: no ticket desk to take it; left open for the agents", task.id)
            return "no ticket desk"
        ticket_id = request.ticket_id or await self.fulfilment._ticket(
            request, TicketType.INVOICE, f"{request.id} 客户催开发票", "system:after_sales"
        )
        if ticket_id is not None and not request.ticket_id:
            await desk.record_urge(ticket_id)  # an existing ticket was raised by the urge flow already
        await self.followups.close(task.id, note=f"已转财务工单 {ticket_id} 加急", result=ticket_id)
        return f"ticket {ticket_id}"


class DownstreamWorker:
    """Each gateway process's loop: dispatch what is due, finish callbacks left pending, and run
    the extra passes given (the day's route plans, the hand-off queue's positions). Woken at once
    by new work, and every ``sweep_seconds`` otherwise."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        *,
        sweep_seconds: float,
        passes: Sequence[Callable[[], Awaitable[Any]]] = (),
    ) -> None:
        self.dispatcher = dispatcher
        self.sweep_seconds = sweep_seconds
        self.passes = list(passes)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.rounds = 0

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="downstream-worker")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def run_once(self) -> None:
        await self.dispatcher.run_once()
        await self.dispatcher.fulfilment.process_pending()
        for extra in self.passes:
            await extra()
        self.rounds += 1

    async def _run(self) -> None:
        while True:
            timeout = self.sweep_seconds if self.sweep_seconds > 0 else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            self._wake.clear()
            await asyncio.sleep(0.05)  # let the writes that woke us finish (a request and its pick-up)
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # the store or a system is down: the next round tries again
                log.exception("downstream round failed")
