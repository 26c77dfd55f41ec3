"""Agents acting on an order from the console: intercept or redirect a parcel, cancel and refund,
resend, compensate, approve a return (or exchange) with a pick-up.

Each goes through the services the bot uses — the shop's ``OrderService``, the after-sales
requests (both timelines: the agent's steps with ``staff:<id>``, the customer's stages), the
pick-ups and the follow-up tasks — and the downstream dispatcher takes it from there (the refund to
the payment centre, the intercept and the dispatch to the warehouse, the pick-up to the courier).
What the shop's rules allow the bot to do by itself (``shop/aftersales_policy.yml``), an agent who
may submit tickets may do; more than that (a resend or compensation above the automatic limit, a
return outside its window or of an excluded item) is a reviewer's decision. Every action is in the
audit log (``order_action``) besides the request's own steps, and the customer is told on their
channel.

Knows nothing of HTTP.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from backoffice.audit import AuditLog
from backoffice.followups import FollowUpKind, FollowUps
from backoffice.notifications import CustomerNotifier
from backoffice.permissions import Actor, Permission
from backoffice.routing.pickups import ExchangeDelivery, Parcels, PickupRequest, PickupStore
from errors import Conflict, NotFound
from shop import Order, OrderActionRefused, OrderService, OrderStatus
from shop.aftersales import AfterSalesRequest, AfterSalesService, RequestType, Step
from shop.policy import AfterSalesPolicy
from store.mongo import ConversationStore

ACTIONS = ("intercept", "redirect", "cancel_refund", "resend", "compensate", "approve_return", "approve_exchange")
PARCEL = Parcels(count=1, weight_kg=1.0, volume_l=6.0)

NOTICES: dict[str, dict[str, str]] = {
    "cancel_refund": {
        "zh": "客服已为您取消订单 {order_id}，退款 ¥{amount:.2f} 已提交支付中心（售后单 {request_id}）。",
        "en": "An agent cancelled order {order_id}; ¥{amount:.2f} is with the payment centre (request {request_id}).",
    },
    "intercept": {
        "zh": "客服已为您申请拦截订单 {order_id} 的包裹，拦截成功后自动退款 ¥{amount:.2f}（售后单 {request_id}）。",
        "en": "An agent asked the warehouse to intercept order {order_id}; once it is back ¥{amount:.2f} is refunded "
        "(request {request_id}).",
    },
    "redirect": {
        "zh": "客服已为您申请将订单 {order_id} 的包裹改派至：{address}，结果会第一时间通知您。",
        "en": "An agent asked to redirect order {order_id} to: {address}. You'll hear the result.",
    },
    "resend": {
        "zh": "客服已为您安排补发：{item} ×{quantity}（售后单 {request_id}），发出后告诉您运单号。",
        "en": "An agent arranged a resend: {item} ×{quantity} (request {request_id}); you'll get the waybill.",
    },
    "compensate": {
        "zh": "客服已为订单 {order_id} 补偿 ¥{amount:.2f}（售后单 {request_id}），{how}。",
        "en": "An agent compensated ¥{amount:.2f} for order {order_id} (request {request_id}); {how}.",
    },
    "approve_return": {
        "zh": "客服已为您办理{topic}（售后单 {request_id}），退货码 {return_code}，快递员将于 {date} {slot} 上门取件。",
        "en": "An agent approved your {topic} (request {request_id}), return code {return_code}; the courier "
        "collects it on {date} {slot}.",
    },
}
HOW = {
    "refund": {"zh": "将原路退回", "en": "it goes back to your original payment method"},
    "store_credit": {"zh": "已发放无门槛券", "en": "as store credit"},
}
TOPIC = {
    RequestType.RETURN_REFUND: {"zh": "退货退款", "en": "return and refund"},
    RequestType.EXCHANGE: {"zh": "换货", "en": "exchange"},
}


class OrderActionInvalid(Conflict):
    """The order is not in a state for this action; nothing was changed."""

    code = "invalid_action"


class OrderNotFound(NotFound):
    """No such order, customer or item."""


class OrderActions:
    def __init__(
        self,
        *,
        store: ConversationStore,
        orders: OrderService,
        aftersales: AfterSalesService,
        pickups: PickupStore,
        followups: FollowUps,
        audit: AuditLog,
        notifier: CustomerNotifier,
        policy: AfterSalesPolicy,
        timezone: str,
    ) -> None:
        self.store = store
        self.orders = orders
        self.aftersales = aftersales
        self.pickups = pickups
        self.followups = followups
        self.audit = audit
        self.notifier = notifier
        self.policy = policy
        self.zone = ZoneInfo(timezone)

    # -- reading -------------------------------------------------------------------------

    async def order(self, order_id: str) -> Order:
        order = await self.orders.get(order_id)
        if order is None:
            raise OrderNotFound(f"no order {order_id}")
        return order

    async def view(self, actor: Actor, order_id: str, language: str = "zh") -> dict[str, Any]:
        """The order with its requests (both timelines), pick-ups, follow-ups and what this agent may do."""
        actor.require(Permission.SUBMIT, "acting on orders")
        order = await self.order(order_id)
        requests = await self.aftersales.for_order(order_id)
        pickups = [p.model_dump(mode="json") for p in await self.pickups.by_ids([r.id for r in requests])]
        tasks = [t.model_dump(mode="json") for t in await self.followups.for_order(order_id)]
        return {
            "order": order.model_dump(mode="json"),
            "requests": [
                {
                    **r.model_dump(mode="json", exclude={"timeline"}),
                    "agent_timeline": r.agent_timeline(language),
                    "customer_timeline": [
                        {"label": s.label, "at": s.at.astimezone(self.zone).isoformat()}
                        for s in r.customer_timeline(language)
                    ],
                }
                for r in requests
            ],
            "pickups": pickups,
            "followups": tasks,
            "actions": self.possible(order),
        }

    def possible(self, order: Order) -> list[str]:
        """What can be done to the order in its state (permission is checked when done)."""
        status = order.status
        if status in (OrderStatus.PAID, OrderStatus.PICKING):
            return ["cancel_refund"]
        if status is OrderStatus.SHIPPED:
            return ["intercept", "redirect", "resend", "compensate"]
        if status is OrderStatus.DELIVERED:
            return ["resend", "compensate", "approve_return", "approve_exchange"]
        return []

    # -- acting --------------------------------------------------------------------------

    async def _customer(
        self, order: Order, customer_id: str | None, conversation_id: str | None
    ) -> tuple[str, str | None]:
        """The customer the order is acted on for (named, or from their conversation), and the
        conversation they hear it on; refused when the order is not theirs."""
        channel_conversation = await self.store.get_conversation(conversation_id) if conversation_id else None
        if conversation_id and channel_conversation is None:
            raise OrderNotFound(f"no conversation {conversation_id}")
        customer_id = customer_id or (channel_conversation.customer_id if channel_conversation else None)
        if customer_id is None:
            raise OrderActionInvalid("name the customer (customer_id) or their conversation (conversation_id)")
        customer = await self.store.get_customer(customer_id)
        if customer is None:
            raise OrderNotFound(f"no customer {customer_id}")
        if channel_conversation is not None and channel_conversation.customer_id != customer_id:
            raise OrderActionInvalid("the conversation is another customer's")
        identities = customer.identities
        owns = (order.customer.phone and identities.get("phone") == order.customer.phone) or (
            order.customer.email and identities.get("email") == order.customer.email
        )
        if not owns:
            raise OrderActionInvalid(f"order {order.order_id} is not this customer's (phone and e-mail differ)")
        if conversation_id is None:
            latest = await self.store.customer_conversations(customer_id, limit=1)
            conversation_id = latest[0].id if latest else None
        return customer_id, conversation_id

    async def _new_request(
        self,
        actor: Actor,
        order: Order,
        type: RequestType,
        customer_id: str,
        conversation_id: str | None,
        *,
        items: list[dict[str, Any]] | None,
        amount: float,
        reason: str,
        details: dict[str, Any] | None = None,
    ) -> AfterSalesRequest:
        conversation = await self.store.get_conversation(conversation_id) if conversation_id else None
        request, created = await self.aftersales.create(
            type=type, order_id=order.order_id, customer_id=customer_id, actor=actor.name,
            conversation_id=conversation_id, channel=conversation.channel if conversation else None,
            items=items, amount=amount, reason=reason, details=details, note=f"客服代客户提交：{reason}",
        )  # fmt: skip
        if not created:
            raise OrderActionInvalid(
                f"request {request.id} ({request.type.value}) is already open for this order and item: "
                f"{request.status.value}"
            )
        return request

    async def _not_refunded(self, order: Order) -> None:
        """An order refunded whole (or on its way to it) is not refunded again."""
        for request in await self.aftersales.for_order(order.order_id):
            if request.type is RequestType.REFUND and request.status not in (Step.REJECTED, Step.CANCELLED):
                raise OrderActionInvalid(
                    f"order {order.order_id} has refund request {request.id} ({request.status.value}) already"
                )

    async def _record(self, actor: Actor, action: str, order: Order, request_id: str | None, **data: Any) -> None:
        now = datetime.now(self.zone).isoformat()
        await self.audit.record(
            entry_id=f"order_action:{order.order_id}:{action}:{request_id or now}",
            kind="order_action",
            subject=f"order:{order.order_id}",
            actor=actor.name,
            at=now,
            data={"action": action, "request_id": request_id, **data},
        )

    async def _tell(self, conversation_id: str | None, key: str, token: str, **values: Any) -> None:
        if conversation_id is None:
            return

        def text(language: str) -> str:
            local = {k: (v.get(language, v["zh"]) if isinstance(v, dict) else v) for k, v in values.items()}
            return NOTICES[key].get(language, NOTICES[key]["zh"]).format(**local)

        await self.notifier.send(conversation_id, text, key=f"order_action:{token}", author="system:backoffice")

    async def cancel_and_refund(
        self, actor: Actor, order_id: str, *, reason: str, customer_id: str | None = None,
        conversation_id: str | None = None,
    ) -> AfterSalesRequest:  # fmt: skip
        """An order not yet shipped: cancelled, its refund to the payment centre (as the bot's 闪电退款)."""
        actor.require(Permission.SUBMIT, "cancelling and refunding an order")
        order = await self.order(order_id)
        if order.status not in (OrderStatus.PAID, OrderStatus.PICKING):
            raise OrderActionInvalid(f"order {order_id} is {order.status.value}: intercept it instead")
        await self._not_refunded(order)
        customer_id, conversation_id = await self._customer(order, customer_id, conversation_id)
        items = [i.model_dump(include={"sku", "name", "quantity", "price"}) for i in order.items]
        request = await self._new_request(actor, order, RequestType.REFUND, customer_id, conversation_id,
                                          items=items, amount=order.amount, reason=reason)  # fmt: skip
        try:
            await self.orders.cancel(order_id, actor=actor.name, reason=request.id)
        except OrderActionRefused as exc:
            await self.aftersales.advance(request.id, Step.CANCELLED, actor=actor.name, note=exc.reason)
            raise OrderActionInvalid(exc.reason) from exc
        request = await self.aftersales.advance(request.id, Step.APPROVED, actor=actor.name, decided_by=actor.name,
                                                note=f"客服取消订单并退款：{reason}")  # fmt: skip
        request = await self.aftersales.advance(request.id, Step.PAYMENT_PROCESSING, actor="payment_centre")
        await self._record(actor, "cancel_refund", order, request.id, reason=reason, amount=order.amount)
        await self._tell(conversation_id, "cancel_refund", request.id, order_id=order_id, amount=order.amount,
                         request_id=request.id)  # fmt: skip
        return request

    async def intercept(
        self, actor: Actor, order_id: str, *, reason: str, customer_id: str | None = None,
        conversation_id: str | None = None,
    ) -> AfterSalesRequest:  # fmt: skip
        """A parcel on its way comes back to the warehouse; the refund follows the warehouse's result."""
        actor.require(Permission.SUBMIT, "intercepting a parcel")
        order = await self.order(order_id)
        if order.status is not OrderStatus.SHIPPED:
            raise OrderActionInvalid(
                f"order {order_id} is {order.status.value}: only a parcel on its way is intercepted"
            )
        await self._not_refunded(order)
        customer_id, conversation_id = await self._customer(order, customer_id, conversation_id)
        items = [i.model_dump(include={"sku", "name", "quantity", "price"}) for i in order.items]
        request = await self._new_request(actor, order, RequestType.REFUND, customer_id, conversation_id,
                                          items=items, amount=order.amount, reason=reason,
                                          details={"intercept": {"by": actor.name}})  # fmt: skip
        request = await self.aftersales.advance(request.id, Step.APPROVED, actor=actor.name, decided_by=actor.name,
                                                note=f"客服申请拦截：{reason}")  # fmt: skip
        await self._record(actor, "intercept", order, request.id, reason=reason)
        await self._tell(conversation_id, "intercept", request.id, order_id=order_id, amount=order.amount,
                         request_id=request.id)  # fmt: skip
        return request

    async def redirect(
        self, actor: Actor, order_id: str, *, address: str, reason: str, customer_id: str | None = None,
        conversation_id: str | None = None,
    ) -> str:  # fmt: skip
        """A parcel on its way goes to another address (a follow-up task the warehouse closes)."""
        actor.require(Permission.SUBMIT, "redirecting a parcel")
        order = await self.order(order_id)
        if order.status is not OrderStatus.SHIPPED:
            raise OrderActionInvalid(f"order {order_id} is {order.status.value}: change the address instead")
        customer_id, conversation_id = await self._customer(order, customer_id, conversation_id)
        conversation = await self.store.get_conversation(conversation_id) if conversation_id else None
        task, _ = await self.followups.create(
            FollowUpKind.ORDER_REDIRECT, order_id, customer_id=customer_id, conversation_id=conversation_id,
            channel=conversation.channel if conversation else None, note=reason, once=True, data={"address": address},
        )  # fmt: skip
        await self._record(actor, "redirect", order, None, reason=reason, address=address, followup_id=task.id)
        await self._tell(conversation_id, "redirect", task.id, order_id=order_id, address=address)
        return task.id

    async def resend(
        self, actor: Actor, order_id: str, *, sku: str, quantity: int, reason: str, customer_id: str | None = None,
        conversation_id: str | None = None,
    ) -> AfterSalesRequest:  # fmt: skip
        order = await self.order(order_id)
        item = order.item(sku)
        if item is None:
            raise OrderNotFound(f"order {order_id} has no item {sku}")
        if not 1 <= quantity <= item.quantity:
            raise OrderActionInvalid(f"quantity must be 1–{item.quantity}")
        value = item.price * quantity
        if value > self.policy.auto_resend_max_amount:
            actor.require(
                Permission.REVIEW, f"a resend worth ¥{value:.2f} (over ¥{self.policy.auto_resend_max_amount:g})"
            )
        else:
            actor.require(Permission.SUBMIT, "a resend")
        if order.status not in (OrderStatus.SHIPPED, OrderStatus.DELIVERED):
            raise OrderActionInvalid(f"order {order_id} is {order.status.value}: nothing to resend")
        customer_id, conversation_id = await self._customer(order, customer_id, conversation_id)
        items = [{"sku": sku, "name": item.name, "quantity": quantity, "price": item.price}]
        request = await self._new_request(actor, order, RequestType.RESEND, customer_id, conversation_id,
                                          items=items, amount=value, reason=reason)  # fmt: skip
        request = await self.aftersales.advance(request.id, Step.APPROVED, Step.RESENDING, actor=actor.name,
                                                decided_by=actor.name, note=f"客服安排补发：{reason}")  # fmt: skip
        await self._record(actor, "resend", order, request.id, sku=sku, quantity=quantity, amount=value)
        await self._tell(conversation_id, "resend", request.id, item=item.name, quantity=quantity,
                         request_id=request.id)  # fmt: skip
        return request

    async def compensate(
        self, actor: Actor, order_id: str, *, amount: float, reason: str, form: Literal["refund", "store_credit"],
        customer_id: str | None = None, conversation_id: str | None = None,
    ) -> AfterSalesRequest:  # fmt: skip
        """Money back for a problem the customer keeps the goods through: as a refund (payment
        centre) or store credit (done at once)."""
        order = await self.order(order_id)
        if not 0 < amount <= order.amount:
            raise OrderActionInvalid(f"amount must be more than 0 and at most the order's ¥{order.amount:.2f}")
        if amount > self.policy.late_delivery_compensation:
            actor.require(
                Permission.REVIEW, f"compensation of ¥{amount:.2f} (over ¥{self.policy.late_delivery_compensation:g})"
            )
        else:
            actor.require(Permission.SUBMIT, "compensation")
        customer_id, conversation_id = await self._customer(order, customer_id, conversation_id)
        request = await self._new_request(actor, order, RequestType.COMPENSATION, customer_id, conversation_id,
                                          items=None, amount=amount, reason=reason, details={"form": form})  # fmt: skip
        steps = (Step.APPROVED, Step.PAYMENT_PROCESSING) if form == "refund" else (Step.APPROVED, Step.COMPLETED)
        request = await self.aftersales.advance(request.id, *steps, actor=actor.name, decided_by=actor.name,
                                                note=f"客服补偿 ¥{amount:.2f}：{reason}")  # fmt: skip
        await self._record(actor, "compensate", order, request.id, amount=amount, form=form, reason=reason)
        await self._tell(conversation_id, "compensate", request.id, order_id=order_id, amount=amount,
                         request_id=request.id, how=HOW[form])  # fmt: skip
        return request

    async def approve_return(
        self, actor: Actor, order_id: str, *, sku: str, date: str, slot: str, reason: str, exchange: bool = False,
        spec: str | None = None, customer_id: str | None = None, conversation_id: str | None = None,
    ) -> AfterSalesRequest:  # fmt: skip
        """A return (or exchange) approved with a courier pick-up, as the bot's 极速审核 does; outside
        the shop's rules (window, excluded items) only a reviewer may."""
        order = await self.order(order_id)
        item = order.item(sku)
        if item is None:
            raise OrderNotFound(f"order {order_id} has no item {sku}")
        if order.status is not OrderStatus.DELIVERED:
            raise OrderActionInvalid(f"order {order_id} is {order.status.value}: only delivered goods are returned")
        if slot not in self.policy.pickup_slots:
            raise OrderActionInvalid(f"slot must be one of {', '.join(self.policy.pickup_slots)}")
        today = datetime.now(self.zone).date()
        if not today <= datetime.fromisoformat(date).date() <= today + timedelta(days=14):
            raise OrderActionInvalid("the pick-up date must be within the next 14 days")
        window = self.policy.exchange_window_days if exchange else self.policy.return_window_days
        delivered = order.delivered_at
        within = delivered is not None and (datetime.now(delivered.tzinfo) - delivered).days <= window
        excluded = self.policy.exclusion(item)
        if not within or excluded:
            why = f"excluded ({excluded})" if excluded else f"outside the {window}-day window"
            actor.require(Permission.REVIEW, f"approving a return {why}")
        else:
            actor.require(Permission.SUBMIT, "approving a return")
        customer_id, conversation_id = await self._customer(order, customer_id, conversation_id)
        kind = RequestType.EXCHANGE if exchange else RequestType.RETURN_REFUND
        items = [item.model_dump(include={"sku", "name", "quantity", "price"})]
        request = await self._new_request(
            actor, order, kind, customer_id, conversation_id, items=items,
            amount=0.0 if exchange else item.price * item.quantity, reason=reason,
            details={"spec": spec} if spec else None,
        )  # fmt: skip
        return_code = "RT" + request.id[2:]
        pickup = {"date": date, "slot": slot, "address": order.address}
        request = await self.aftersales.advance(
            request.id, Step.APPROVED, Step.AWAITING_RETURN, actor=actor.name, decided_by=actor.name,
            note=f"客服审核通过：{reason}", details={"return_code": return_code, "pickup": pickup},
        )  # fmt: skip
        start, end = slot.split("-")
        await self.pickups.request_pickup(
            PickupRequest(
                pickup_id=request.id, order_id=order_id, kind="exchange" if exchange else "return",
                customer_name=order.customer.name, phone=order.customer.phone, address=order.address, date=date,
                window_start=start, window_end=end, parcels=PARCEL,
                exchange=ExchangeDelivery(sku=sku, count=1, weight_kg=1.0, volume_l=6.0) if exchange else None,
            )
        )  # fmt: skip
        await self._record(actor, "approve_exchange" if exchange else "approve_return", order, request.id,
                           sku=sku, date=date, slot=slot, reason=reason)  # fmt: skip
        await self._tell(conversation_id, "approve_return", request.id, topic=TOPIC[kind], request_id=request.id,
                         return_code=return_code, date=date, slot=slot)  # fmt: skip
        return request
