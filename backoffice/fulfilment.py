"""After-sales fulfilment: what the downstream systems' news does to a request, a pick-up, a
parcel and a follow-up task, and what the customer is told on their own channel.

A refund paid ends the request (退款成功); a partial or failed refund goes to a person with a
ticket; a pick-up collected moves the return on, a failed one is rebooked for the next day (a
person takes over after :attr:`Fulfilment.rebook_limit` failures); goods received and checked
start the refund or the exchange's dispatch, a failed check goes to review with the inspector's
photos; a dispatched resend or exchange names its tracking number; a signed parcel completes it, a
problem scan opens a courier inquiry the customer is told of; the warehouse's and courier's
answers close the follow-up tasks behind the bot's promises, and a parcel the courier confirms
lost goes to a person with a ticket (the bot promised a resend or a refund without a new
application).

Every event is applied at most once (the inbox keys it) and every effect is monotonic: a late or
repeated piece of news never moves anything back, so callbacks may arrive in any order. Customer
notices are keyed by the event, so a crash between an effect and marking the event done sends
nothing twice.

Knows nothing of wire formats (``downstream`` parses them) or of the dialogue.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

import textpatterns
from backoffice.followups import FollowUp, FollowUpKind, FollowUps
from backoffice.lifecycle import TicketType
from backoffice.notifications import CustomerNotifier
from backoffice.routing.pickups import PickupStatus, PickupStore
from backoffice.tickets import TicketDesk
from downstream.events import DownstreamEvent, EventKind, ScanState
from downstream.inbox import CallbackInbox
from downstream.warehouse import Warehouse
from shop.aftersales import (
    GOODS_BACK,
    SHIPPED_BY,
    AfterSalesRequest,
    AfterSalesService,
    RequestConflict,
    RequestType,
    Step,
)
from shop.policy import AfterSalesPolicy
from store.media import MediaRejected, MediaStore
from store.mongo import ConversationStore

log = logging.getLogger(__name__)

MONEY_TYPES = frozenset(
    {RequestType.REFUND, RequestType.RETURN_REFUND, RequestType.COMPENSATION, RequestType.PRICE_PROTECTION}
)
PHOTO_MAX_BYTES = 5 * 1024 * 1024
LOST = textpatterns.compile(r"丢失|遗失|丢件|丟失|遺失|\blost\b", textpatterns.IGNORECASE)
"""A courier's answer to an inquiry that the parcel is gone: the bot promised a resend or a refund."""
CARRIERS = {"SF": {"zh": "顺丰", "en": "SF Express "}, "shunfeng": {"zh": "顺丰", "en": "SF Express "}}

NOTICES: dict[str, dict[str, str]] = {
    "refunded": {
        "zh": "退款成功：售后单 {request_id}（订单 {order_id}）¥{amount:.2f} 已原路退回，请注意查收。",
        "en": "Refunded: ¥{amount:.2f} for request {request_id} (order {order_id}) is back on your original "
        "payment method.",
    },
    "refund_partial": {
        "zh": "售后单 {request_id} 已退回 ¥{paid:.2f}，另有 ¥{rest:.2f} 未能原路退回（{reason}）。"
        "专员会在 {hours} 小时内为您处理。",
        "en": "Request {request_id}: ¥{paid:.2f} is refunded; ¥{rest:.2f} could not go back the same way "
        "({reason}). A specialist will settle it within {hours} hours.",
    },
    "refund_failed": {
        "zh": "很抱歉，售后单 {request_id} 的退款 ¥{amount:.2f} 未能到账：{reason}。"
        "专员会在 {hours} 小时内联系您处理。",
        "en": "Sorry, the refund of ¥{amount:.2f} for request {request_id} did not go through: {reason}. "
        "A specialist will contact you within {hours} hours.",
    },
    "collected": {
        "zh": "快递员已上门取件（售后单 {request_id}），退货运单号 {tracking}。商家收到并质检后为您{after}。",
        "en": "The courier collected your parcel (request {request_id}), waybill {tracking}. Once it arrives and "
        "is checked we {after}.",
    },
    "after_refund": {"zh": "退款", "en": "refund you"},
    "after_exchange": {"zh": "寄出新商品", "en": "send the replacement"},
    "pickup_rebooked": {
        "zh": "很抱歉，{date} {slot} 的上门取件未成功：{reason}。已为您改约 {new_date} {new_slot} 重新上门取件"
        "（售后单 {request_id}）；如需换个时间，回复「转人工」。",
        "en": "Sorry, the pick-up on {date} {slot} did not happen: {reason}. It is rebooked for {new_date} "
        '{new_slot} (request {request_id}); to choose another time, reply "agent".',
    },
    "pickup_failed_final": {
        "zh": "很抱歉，售后单 {request_id} 的上门取件已 {count} 次未成功（{reason}），"
        "专员会在 {hours} 小时内联系您另行安排。",
        "en": "Sorry, the pick-up for request {request_id} failed {count} times ({reason}). A specialist will "
        "arrange another way within {hours} hours.",
    },
    "qc_passed_refund": {
        "zh": "商家已收到退货并质检通过，退款 ¥{amount:.2f} 已提交支付中心，"
        "预计 {days} 个工作日到账（售后单 {request_id}）。",
        "en": "Your return arrived and passed the check: ¥{amount:.2f} is with the payment centre, expected within "
        "{days} working days (request {request_id}).",
    },
    "qc_passed_exchange": {
        "zh": "商家已收到您寄回的商品，质检通过，正在为您安排换新发货（售后单 {request_id}）。",
        "en": "Your item arrived and passed the check; the replacement is being prepared (request {request_id}).",
    },
    "qc_failed": {
        "zh": "商家已收到退货，质检发现问题：{reason}。已转专员复核（工单 {ticket_id}），{hours} 小时内给您答复。",
        "en": "Your return arrived, but the check found a problem: {reason}. A specialist reviews it (ticket "
        "{ticket_id}) and answers within {hours} hours.",
    },
    "exchange_shipped": {
        "zh": "换货已发出：{carrier}运单号 {tracking}（售后单 {request_id}）。",
        "en": "Your replacement is on its way: {carrier}waybill {tracking} (request {request_id}).",
    },
    "resend_shipped": {
        "zh": "补发商品已发出：{carrier}运单号 {tracking}（售后单 {request_id}）。",
        "en": "The missing item is on its way: {carrier}waybill {tracking} (request {request_id}).",
    },
    "delivered": {
        "zh": "运单 {tracking} 已签收，售后单 {request_id}（{type}）已完成。",
        "en": "Waybill {tracking} was delivered; request {request_id} ({type}) is complete.",
    },
    "intercepted": {
        "zh": "订单 {order_id} 的包裹已拦截退回，退款 ¥{amount:.2f} 已提交支付中心（售后单 {request_id}）。",
        "en": "The parcel of order {order_id} was intercepted; ¥{amount:.2f} is with the payment centre "
        "(request {request_id}).",
    },
    "intercept_failed": {
        "zh": "很抱歉，订单 {order_id} 的包裹未能拦截：{reason}。派送时您可以直接拒收，包裹退回后自动退款。",
        "en": "Sorry, the parcel of order {order_id} could not be intercepted: {reason}. You can refuse it at the "
        "door; the refund follows once it is back.",
    },
    "redirected": {
        "zh": "订单 {order_id} 的包裹已改派至新地址：{address}。",
        "en": "The parcel of order {order_id} now goes to: {address}.",
    },
    "redirect_failed": {
        "zh": "很抱歉，订单 {order_id} 的包裹未能改派：{reason}。",
        "en": "Sorry, the parcel of order {order_id} could not be redirected: {reason}.",
    },
    "expedite_shipped": {
        "zh": "仓库已加急处理：订单 {order_id} 已发出，运单号 {tracking}。",
        "en": "The warehouse hurried order {order_id}: it has left, waybill {tracking}.",
    },
    "expedite_failed": {
        "zh": "仓库回复订单 {order_id} 暂时无法加急：{reason}。专员会跟进并联系您。",
        "en": "The warehouse cannot hurry order {order_id} now: {reason}. A specialist follows it up.",
    },
    "courier_answer": {
        "zh": "快递公司关于订单 {order_id} 的答复：{result}",
        "en": "The courier's answer about order {order_id}: {result}",
    },
    "parcel_lost": {
        "zh": "快递公司确认订单 {order_id} 的包裹已丢失（{result}）。专员会在 {hours} 小时内为您补发或全额退款，"
        "不需要您另外申请。",
        "en": "The courier confirmed the parcel of order {order_id} is lost ({result}). A specialist will resend it "
        "or refund you in full within {hours} hours; you don't need to apply.",
    },
    "parcel_exception": {
        "zh": "运单 {tracking}（售后单 {request_id}）出现异常：{context}。已为您向快递公司发起查件，{due} 前会有结果。",
        "en": "Waybill {tracking} (request {request_id}) reports a problem: {context}. We opened an inquiry with the "
        "courier; you'll hear by {due}.",
    },
}


def notice(key: str, language: str, **values: Any) -> str:
    templates = NOTICES[key]
    return templates.get(language, templates["zh"]).format(**values)


class Fulfilment:
    """Applies :class:`DownstreamEvent` s; :meth:`handle` is what the callback routes call."""

    def __init__(
        self,
        db: AsyncDatabase[dict[str, Any]],
        *,
        store: ConversationStore,
        aftersales: AfterSalesService,
        followups: FollowUps,
        pickups: PickupStore,
        notifier: CustomerNotifier,
        tickets: TicketDesk | None = None,
        warehouse: Warehouse | None = None,
        media: MediaStore | None = None,
        policy: AfterSalesPolicy | None = None,
        timezone: str = "Asia/Shanghai",
        rebook_limit: int = 2,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.inbox = CallbackInbox(db)
        self.parcels = db["parcels"]
        self.store = store
        self.aftersales = aftersales
        self.followups = followups
        self.pickups = pickups
        self.notifier = notifier
        self.tickets = tickets
        self.warehouse = warehouse
        self.media = media
        self.policy = policy or AfterSalesPolicy()
        self.zone = ZoneInfo(timezone)
        self.rebook_limit = rebook_limit
        self.on_change = on_change
        """Told when an event leaves work for the dispatcher (a refund to submit, a parcel to follow)."""

    async def ensure_indexes(self) -> None:
        await self.inbox.ensure_indexes()
        await self.parcels.create_index("subscribed")

    # -- the inbox -----------------------------------------------------------------------

    async def known(self, event: DownstreamEvent) -> bool:
        """Whether the event is about something of ours (checked before it is stored)."""
        if event.request_id is not None:
            return await self.aftersales.get(event.request_id) is not None
        if event.pickup_id is not None:
            return await self.pickups.get(event.pickup_id) is not None
        if event.followup_id is not None:
            return await self.followups.get(event.followup_id) is not None
        if event.tracking_number is not None:
            return await self.parcels.find_one({"_id": event.tracking_number}, {"_id": 1}) is not None
        return False

    async def handle(self, event: DownstreamEvent, raw: bytes, signed_at: int) -> tuple[bool, str]:
        """Store the event (once), then apply it: ``(duplicate, note)``. A failure while applying
        leaves it pending for the sweep; the callback is acknowledged either way (it is stored)."""
        stored, duplicate = await self.inbox.accept(event, raw, signed_at)
        if duplicate and stored.get("status") != "pending":
            return True, str(stored.get("note") or stored.get("status"))
        return duplicate, await self.process(event)

    async def process(self, event: DownstreamEvent) -> str:
        if not await self.inbox.claim(event.id):
            return "being applied"
        try:
            note = await self.apply(event)
        except Exception as exc:
            log.exception("applying downstream event %s failed; the sweep retries", event.id)
            await self.inbox.failed_attempt(event.id, f"{type(exc).__name__}: {exc}")
            return "pending"
        await self.inbox.done(event.id, note)
        if self.on_change is not None:
            self.on_change()
        return note

    async def process_pending(self) -> int:
        """Finish events a process accepted but did not apply (it died, or applying failed)."""
        events = await self.inbox.pending()
        for event in events:
            await self.process(event)
        return len(events)

    # -- applying ------------------------------------------------------------------------

    async def apply(self, event: DownstreamEvent) -> str:
        handlers = {
            EventKind.REFUND_SUCCEEDED: self._refund_succeeded,
            EventKind.REFUND_PARTIAL: self._refund_short,
            EventKind.REFUND_FAILED: self._refund_short,
            EventKind.RETURN_RECEIVED: self._return_received,
            EventKind.QC_PASSED: self._qc_passed,
            EventKind.QC_FAILED: self._qc_failed,
            EventKind.OUTBOUND_SHIPPED: self._shipped,
            EventKind.INTERCEPT_RESULT: self._intercept_result,
            EventKind.EXPEDITE_RESULT: self._expedite_result,
            EventKind.PICKUP_ASSIGNED: self._pickup_assigned,
            EventKind.PICKUP_COLLECTED: self._pickup_collected,
            EventKind.PICKUP_FAILED: self._pickup_failed,
            EventKind.TRACKING: self._tracking,
            EventKind.WORK_ORDER_RESULT: self._work_order_result,
        }
        return await handlers[event.kind](event)

    async def _request(self, event: DownstreamEvent) -> AfterSalesRequest:
        assert event.request_id is not None
        request = await self.aftersales.get(event.request_id)
        if request is None:
            raise KeyError(event.request_id)
        return request

    async def _advance(
        self, request: AfterSalesRequest, event: DownstreamEvent, *steps: Step, actor: str, note: str, **extra: Any
    ) -> bool:
        """Append steps unless the request closed meanwhile (False then: nothing changed). Keyed by
        the event and the steps, so applying the same news again adds nothing."""
        once = f"{event.id}:{'+'.join(s.value for s in steps)}"
        try:
            await self.aftersales.advance(request.id, *steps, actor=actor, note=note, once=once, **extra)
        except RequestConflict:
            return False
        return True

    async def _tell(self, request: AfterSalesRequest | None, event: DownstreamEvent, key: str, **values: Any) -> None:
        """The customer hears it on the channel of the request's conversation (or their latest)."""
        conversation_id = request.conversation_id if request is not None else values.pop("conversation_id", None)
        customer_id = request.customer_id if request is not None else values.pop("customer_id", None)
        if conversation_id is None and customer_id:
            latest = await self.store.customer_conversations(customer_id, limit=1)
            conversation_id = latest[0].id if latest else None
        if conversation_id is None:
            return
        await self.notifier.send(
            conversation_id,
            lambda language: notice(key, language, **_localised(values, language)),
            key=f"downstream:{event.id}:{key}",
            author="system:after_sales",
        )

    async def _ticket(
        self, request: AfterSalesRequest, ticket_type: TicketType, summary: str, actor: str, **extra: Any
    ) -> str | None:
        if self.tickets is None:
            return None
        conversation = await self.store.get_conversation(request.conversation_id) if request.conversation_id else None
        ticket, _ = await self.tickets.open(
            type=ticket_type,
            customer_id=request.customer_id,
            summary=summary,
            conversation_id=request.conversation_id,
            channel=conversation.channel if conversation else request.channel,
            order_id=request.order_id,
            request_id=request.id,
            reason=request.reason,
            amount=request.amount,
            actor=actor,
            quiet=True,
            **extra,
        )
        return ticket.id

    # payment centre

    async def _refund_succeeded(self, event: DownstreamEvent) -> str:
        request = await self._request(event)
        if request.status is Step.COMPLETED or not request.open:
            return f"request already {request.status.value}"
        amount = float(event.data.get("refunded", request.amount))
        refund = {"refund_id": event.data.get("refund_id"), "refunded": amount, "at": event.occurred_at.isoformat()}
        if not await self._advance(request, event, Step.COMPLETED, actor="payment_centre",
                                   note=f"退款成功 ¥{amount:.2f}", details={"refund": refund}):  # fmt: skip
            return "request closed meanwhile"
        await self._tell(request, event, "refunded", request_id=request.id, order_id=request.order_id, amount=amount)
        return "completed"

    async def _refund_short(self, event: DownstreamEvent) -> str:
        request = await self._request(event)
        if not request.open:
            return f"request already {request.status.value}"  # a late report of an earlier try changes nothing
        reason = str(event.data.get("reason") or "支付渠道异常")
        hours = self.policy.review_hours
        if event.kind is EventKind.REFUND_PARTIAL:
            paid, rest = float(event.data["refunded"]), float(event.data["shortfall"])
            note = f"部分退款 ¥{paid:.2f}，差额 ¥{rest:.2f} 未退：{reason}"
            key, values = "refund_partial", {"paid": paid, "rest": rest, "reason": reason}
        else:
            note = f"支付中心退款失败：{reason}"
            key, values = "refund_failed", {"amount": request.amount, "reason": reason}
        refund = {"refund_id": event.data.get("refund_id"), "status": event.data.get("status"), "problem": note}
        if not await self._advance(request, event, request.status, actor="payment_centre", note=note,
                                   details={"refund": refund}):  # fmt: skip
            return "request closed meanwhile"
        await self._ticket(request, TicketType.REFUND, f"{request.id} {note}", "system:payment_centre")
        await self._tell(request, event, key, request_id=request.id, hours=hours, **values)
        return "to a person"

    # warehouse: returns

    async def _mark_collected(self, pickup_id: str, event: DownstreamEvent) -> None:
        """Goods the warehouse has were collected, whatever the courier's own report says yet."""
        await self.pickups.update(
            pickup_id,
            {"status": PickupStatus.PICKED_UP.value, "last_event_ms": _ms(event.occurred_at)},
            expect_status=[PickupStatus.REQUESTED.value, PickupStatus.PLANNED.value, PickupStatus.FAILED.value],
        )

    async def _return_received(self, event: DownstreamEvent) -> str:
        request = await self._request(event)
        await self._mark_collected(request.id, event)
        if request.status not in (Step.APPROVED, Step.AWAITING_RETURN):
            return f"request already {request.status.value}"
        await self._advance(request, event, Step.GOODS_RECEIVED, actor="warehouse", note="仓库已签收退货，待质检")
        return "goods received"

    async def _qc_passed(self, event: DownstreamEvent) -> str:
        request = await self._request(event)
        await self._mark_collected(request.id, event)
        if request.status in (Step.APPROVED, Step.AWAITING_RETURN):
            if not await self._advance(
                request, event, Step.GOODS_RECEIVED, actor="warehouse", note="仓库已收货，质检通过"
            ):
                return "request closed meanwhile"
            request = await self._request(event)
        elif request.status is Step.GOODS_RECEIVED:
            await self._advance(request, event, Step.GOODS_RECEIVED, actor="warehouse", note="质检通过")
            request = await self._request(event)
        else:
            return f"request already {request.status.value}"
        if request.type is RequestType.RETURN_REFUND:
            await self._advance(
                request, event, Step.PAYMENT_PROCESSING, actor="system:after_sales", note="质检通过，自动退款"
            )
            await self._tell(request, event, "qc_passed_refund", request_id=request.id, amount=request.amount,
                             days=self.policy.refund_days)  # fmt: skip
        else:
            await self._tell(request, event, "qc_passed_exchange", request_id=request.id)
        return "checked: passed"

    async def _qc_failed(self, event: DownstreamEvent) -> str:
        request = await self._request(event)
        await self._mark_collected(request.id, event)
        if request.status not in (Step.APPROVED, Step.AWAITING_RETURN, Step.GOODS_RECEIVED):
            return f"request already {request.status.value}"
        reason = str(event.data.get("reason") or "质检未通过")
        photos = await self._photos(event)
        if photos:
            await self.aftersales.add_evidence(request.id, photos)
        steps = (
            (Step.GOODS_RECEIVED, Step.REVIEWING) if request.status is not Step.GOODS_RECEIVED else (Step.REVIEWING,)
        )
        if not await self._advance(request, event, *steps, actor="warehouse", note=f"质检未通过：{reason}",
                                   details={"quality_check": {"result": "fail", "reason": reason,
                                                              "photos": photos}}):  # fmt: skip
            return "request closed meanwhile"
        request = await self._request(event)
        ticket_type = TicketType.RETURN_REFUND if request.type is RequestType.RETURN_REFUND else TicketType.EXCHANGE
        ticket_id = await self._ticket(request, ticket_type, f"{request.id} 退货质检未通过：{reason}",
                                       "system:warehouse", evidence=photos)  # fmt: skip
        await self._tell(request, event, "qc_failed", reason=reason, ticket_id=ticket_id or "-",
                         hours=self.policy.review_hours)  # fmt: skip
        return "checked: failed, to review"

    async def _photos(self, event: DownstreamEvent) -> list[str]:
        """The inspector's photos, kept in the media store (agents see them beside the ticket)."""
        kept: list[str] = []
        if self.warehouse is None or self.media is None:
            return kept
        for url in event.data.get("photos", []):
            try:
                data, content_type = await self.warehouse.fetch_photo(str(url), max_bytes=PHOTO_MAX_BYTES)
                attachment = await self.media.save(data, content_type, filename=str(url).rsplit("/", 1)[-1][:100])
            except (MediaRejected, Exception) as exc:  # a photo we cannot get must not lose the check
                log.warning("quality-check photo %s not kept: %s", url, exc)
                continue
            if attachment.media_id:
                kept.append(attachment.media_id)
        return kept

    # warehouse: parcels out

    async def _shipped(self, event: DownstreamEvent) -> str:
        request = await self._request(event)
        tracking = str(event.data["tracking_number"])
        carrier = str(event.data.get("carrier") or "")
        if request.details.get("tracking_number") == tracking or not request.open:
            return "already recorded"
        if request.type is RequestType.EXCHANGE and request.status is Step.GOODS_RECEIVED:
            steps: tuple[Step, ...] = (Step.RESENDING,)
        elif request.type is RequestType.RESEND and request.status in (Step.APPROVED, Step.RESENDING):
            steps = (Step.RESENDING,)
        else:
            return f"not expected at {request.status.value}"
        details = {"tracking_number": tracking, "carrier": carrier}
        if not await self._advance(request, event, *steps, actor=SHIPPED_BY, note=f"已发出，运单号 {tracking}",
                                   details=details):  # fmt: skip
            return "request closed meanwhile"
        await self._follow_parcel(tracking, kind="outbound", request_id=request.id, order_id=request.order_id,
                                  company=carrier)  # fmt: skip
        key = "exchange_shipped" if request.type is RequestType.EXCHANGE else "resend_shipped"
        await self._tell(request, event, key, request_id=request.id, tracking=tracking, carrier=_carrier(carrier))
        return "shipped"

    async def _follow_parcel(self, tracking: str, **fields: Any) -> None:
        """Keep a parcel to follow; the dispatcher subscribes it with the courier."""
        doc = {"_id": tracking, **fields, "scans": [], "state": None, "subscribed": False}
        with contextlib.suppress(DuplicateKeyError):  # followed already
            await self.parcels.insert_one(doc)

    async def _intercept_result(self, event: DownstreamEvent) -> str:
        result = str(event.data.get("result"))
        reason = str(event.data.get("reason") or event.data.get("note") or "包裹已在派送途中")
        if event.followup_id is not None:  # a redirect
            task = await self.followups.get(event.followup_id)
            if task is None or not await self.followups.close(task.id, note=f"仓库：{result}", result=result):
                return "follow-up already closed"
            address = str(task.data.get("address") or "")
            key = "redirected" if result == "redirected" else "redirect_failed"
            await self._tell(None, event, key, order_id=task.order_id, address=address, reason=reason,
                             conversation_id=task.conversation_id, customer_id=task.customer_id)  # fmt: skip
            return f"redirect {result}"
        request = await self._request(event)
        if request.status is not Step.APPROVED:
            return f"request already {request.status.value}"
        if result == "intercepted":
            await self._advance(
                request, event, Step.PAYMENT_PROCESSING, actor="warehouse", note="包裹已拦截退回，提交退款"
            )
            await self._tell(request, event, "intercepted", order_id=request.order_id, amount=request.amount,
                             request_id=request.id)  # fmt: skip
        else:
            await self._advance(request, event, Step.CANCELLED, actor="warehouse", note=f"拦截失败：{reason}")
            await self._tell(request, event, "intercept_failed", order_id=request.order_id, reason=reason)
        return f"intercept {result}"

    async def _expedite_result(self, event: DownstreamEvent) -> str:
        assert event.followup_id is not None
        task = await self.followups.get(event.followup_id)
        result = str(event.data.get("result"))
        note = str(event.data.get("note") or "")
        if task is None or not await self.followups.close(
            task.id, note=f"仓库：{result} {note}".strip(), result=result
        ):
            return "follow-up already closed"
        values = {"order_id": task.order_id, "conversation_id": task.conversation_id, "customer_id": task.customer_id}
        if result == "shipped" and event.data.get("tracking_number"):
            await self._follow_parcel(str(event.data["tracking_number"]), kind="order", order_id=task.order_id,
                                      company=str(event.data.get("carrier") or ""))  # fmt: skip
            await self._tell(None, event, "expedite_shipped", tracking=event.data["tracking_number"], **values)
        elif result == "failed":
            await self._tell(None, event, "expedite_failed", reason=note or "-", **values)
        return f"expedite {result}"

    # courier: pick-ups

    async def _pickup_assigned(self, event: DownstreamEvent) -> str:
        assert event.pickup_id is not None
        pickup = await self.pickups.get(event.pickup_id)
        if pickup is None or _ms(event.occurred_at) < pickup.last_event_ms:
            return "older than what is known"
        courier = {
            **(pickup.courier or {}),
            "assigned": event.data.get("courier"),
            "assigned_phone": event.data.get("courier_phone"),
            "assigned_at": event.occurred_at.isoformat(),
        }
        await self.pickups.update(pickup.pickup_id, {"courier": courier, "last_event_ms": _ms(event.occurred_at)})
        return "assigned"

    async def _pickup_collected(self, event: DownstreamEvent) -> str:
        assert event.pickup_id is not None
        pickup = await self.pickups.get(event.pickup_id)
        if pickup is None:
            return "no such pick-up"
        tracking = str(event.data["tracking_number"])
        changed = await self.pickups.update(
            pickup.pickup_id,
            {"status": PickupStatus.PICKED_UP.value, "tracking_number": tracking,
             "last_event_ms": max(pickup.last_event_ms, _ms(event.occurred_at))},
            expect_status=[PickupStatus.REQUESTED.value, PickupStatus.PLANNED.value, PickupStatus.FAILED.value],
        )  # fmt: skip
        if not changed:
            if pickup.status is PickupStatus.PICKED_UP and not pickup.tracking_number:
                await self.pickups.update(pickup.pickup_id, {"tracking_number": tracking})
            else:
                return f"pick-up already {pickup.status.value}"
        await self._follow_parcel(tracking, kind="return", request_id=pickup.pickup_id, pickup_id=pickup.pickup_id,
                                  order_id=pickup.order_id, company=str(event.data.get("company") or ""))  # fmt: skip
        request = await self.aftersales.get(pickup.pickup_id)
        if request is None or request.status is not Step.AWAITING_RETURN:
            return f"collected; request {request.status.value if request else 'gone'}"
        note = f"快递员已取件，运单号 {tracking}"
        await self._advance(
            request,
            event,
            Step.AWAITING_RETURN,
            actor="courier",
            note=note,
            details={"return_tracking_number": tracking},
        )
        after = "after_refund" if request.type is RequestType.RETURN_REFUND else "after_exchange"
        await self._tell(request, event, "collected", request_id=request.id, tracking=tracking, after=after)
        return "collected"

    def next_slot(self, failed_day: str) -> str:
        """The day a failed pick-up is rebooked for: the day after the failed one, never in the past."""
        tomorrow = datetime.now(self.zone).date() + timedelta(days=1)
        return max(date.fromisoformat(failed_day) + timedelta(days=1), tomorrow).isoformat()

    async def _pickup_failed(self, event: DownstreamEvent) -> str:
        assert event.pickup_id is not None
        pickup = await self.pickups.get(event.pickup_id)
        if pickup is None:
            return "no such pick-up"
        if pickup.status not in (PickupStatus.REQUESTED, PickupStatus.PLANNED):
            return f"pick-up already {pickup.status.value}"
        if _ms(event.occurred_at) < pickup.last_event_ms:
            return "older than what is known (an earlier visit)"
        reason = str(event.data.get("reason") or "上门未取到件")
        attempt = {"date": pickup.date, "window": f"{pickup.window_start}-{pickup.window_end}", "reason": reason,
                   "plan_id": pickup.plan_id, "at": event.occurred_at.isoformat()}  # fmt: skip
        attempts = [*pickup.attempts, attempt]
        request = await self.aftersales.get(pickup.pickup_id)
        slot = f"{pickup.window_start}-{pickup.window_end}"
        if len(attempts) > self.rebook_limit:
            await self.pickups.update(
                pickup.pickup_id,
                {"status": PickupStatus.FAILED.value, "attempts": attempts, "last_event_ms": _ms(event.occurred_at)},
                expect_status=[PickupStatus.REQUESTED.value, PickupStatus.PLANNED.value],
            )
            if request is not None and request.open:
                await self._advance(
                    request, event, request.status, actor="courier", note=f"第 {len(attempts)} 次取件失败：{reason}"
                )
                ticket_type = TicketType(request.type.value) if request.type in GOODS_BACK else TicketType.RETURN_REFUND
                summary = f"{request.id} 上门取件 {len(attempts)} 次失败：{reason}"
                await self._ticket(request, ticket_type, summary, "system:courier")
                await self._tell(request, event, "pickup_failed_final", request_id=request.id, count=len(attempts),
                                 reason=reason, hours=self.policy.review_hours)  # fmt: skip
            return "failed: to a person"
        new_date = self.next_slot(pickup.date)
        await self.pickups.update(
            pickup.pickup_id,
            {"status": PickupStatus.REQUESTED.value, "date": new_date, "plan_id": None, "attempts": attempts,
             "last_event_ms": _ms(event.occurred_at)},
            expect_status=[PickupStatus.REQUESTED.value, PickupStatus.PLANNED.value],
        )  # fmt: skip
        if request is not None and request.open:
            pickup_details = {**(request.details.get("pickup") or {}), "date": new_date, "slot": slot}
            await self._advance(request, event, request.status, actor="courier",
                                note=f"取件失败：{reason}；改约 {new_date} {slot}",
                                details={"pickup": pickup_details})  # fmt: skip
            await self._tell(request, event, "pickup_rebooked", date=pickup.date, slot=slot, reason=reason,
                             new_date=new_date, new_slot=slot, request_id=request.id)  # fmt: skip
        return f"failed: rebooked for {new_date}"

    # courier: parcels and work orders

    async def _tracking(self, event: DownstreamEvent) -> str:
        assert event.tracking_number is not None
        parcel = await self.parcels.find_one({"_id": event.tracking_number})
        if parcel is None:
            return "no such parcel"
        seen = {(s["time"], s["state"], s["context"]) for s in parcel.get("scans", [])}
        scans = list(parcel.get("scans", []))
        scans += [s for s in event.data.get("scans", []) if (s["time"], s["state"], s["context"]) not in seen]
        scans.sort(key=lambda s: str(s["time"]))
        state = scans[-1]["state"] if scans else None
        await self.parcels.update_one({"_id": parcel["_id"]}, {"$set": {"scans": scans, "state": state}})
        if parcel.get("kind") == "return" and parcel.get("pickup_id"):
            await self._mark_collected(str(parcel["pickup_id"]), event)
        if parcel.get("kind") != "outbound" or not parcel.get("request_id"):
            return f"parcel {state}"
        request = await self.aftersales.get(str(parcel["request_id"]))
        if request is None or request.status is not Step.RESENDING:
            return f"parcel {state}"
        if state == ScanState.SIGNED.value:
            await self._advance(request, event, Step.COMPLETED, actor="courier", note=f"运单 {parcel['_id']} 已签收")
            await self._tell(request, event, "delivered", tracking=parcel["_id"], request_id=request.id,
                             type=request.type_label("zh"))  # fmt: skip
            return "delivered: completed"
        if state in (ScanState.EXCEPTION.value, ScanState.RETURNED_TO_SENDER.value):
            context = str(scans[-1]["context"])
            task, created = await self.followups.create(
                FollowUpKind.COURIER_INQUIRY, request.order_id, request_id=request.id,
                customer_id=request.customer_id, conversation_id=request.conversation_id,
                note=f"运单 {parcel['_id']} {context}", once=True, data={"tracking_number": parcel["_id"]},
            )  # fmt: skip
            if created:  # the customer hears of the problem and of the inquiry that is now under way
                due = f"{task.due_at.astimezone(self.zone):%m-%d %H:%M}"
                await self._tell(request, event, "parcel_exception", tracking=parcel["_id"], request_id=request.id,
                                 context=context, due=due)  # fmt: skip
            return f"parcel {state}: courier inquiry opened"
        return f"parcel {state}"

    async def _work_order_result(self, event: DownstreamEvent) -> str:
        assert event.followup_id is not None
        task = await self.followups.get(event.followup_id)
        result = str(event.data.get("result"))
        if task is None or not await self.followups.close(task.id, note=f"快递公司：{result}", result=result):
            return "follow-up already closed"
        values = {"order_id": task.order_id, "result": result, "conversation_id": task.conversation_id,
                  "customer_id": task.customer_id}  # fmt: skip
        if task.kind is FollowUpKind.COURIER_INQUIRY and LOST.search(result):
            await self._lost_parcel(task, result)
            await self._tell(None, event, "parcel_lost", hours=self.policy.review_hours, **values)
            return "answered: lost, to a person"
        await self._tell(None, event, "courier_answer", **values)
        return "answered"

    async def _lost_parcel(self, task: FollowUp, result: str) -> str | None:
        """A parcel the courier confirmed lost: a person resends it or refunds it (the bot promised
        one of the two without a new application); a ticket carries it to them."""
        if self.tickets is None:
            return None
        summary = f"订单 {task.order_id} 快递确认丢件：{result}（补发或全额退款）"
        request = await self.aftersales.get(task.request_id) if task.request_id else None
        if request is not None:
            ticket_type = TicketType.EXCHANGE if request.type is RequestType.EXCHANGE else TicketType.RESEND
            return await self._ticket(request, ticket_type, summary, "system:courier")
        if task.customer_id is None:  # every inquiry the bot or a parcel opens names its customer
            log.error("lost parcel of order %s: no customer to open a ticket for", task.order_id)
            return None
        ticket, _ = await self.tickets.open(
            type=TicketType.RESEND, customer_id=task.customer_id, summary=summary, conversation_id=task.conversation_id,
            channel=task.channel, order_id=task.order_id, reason="parcel_lost", actor="system:courier", quiet=True,
        )  # fmt: skip
        return ticket.id


def _ms(moment: datetime) -> int:
    return int(moment.astimezone(UTC).timestamp() * 1000)


def _carrier(code: str) -> dict[str, str]:
    return CARRIERS.get(code, {"zh": code, "en": f"{code} " if code else ""})


def _localised(values: dict[str, Any], language: str) -> dict[str, Any]:
    """Values that differ by language (a carrier's name, the next step's words) picked for it."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out[key] = value.get(language, value.get("zh", ""))
        elif key == "after" and isinstance(value, str) and value in NOTICES:
            out[key] = notice(value, language)
        else:
            out[key] = value
    return out
