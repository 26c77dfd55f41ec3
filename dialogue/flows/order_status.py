"""Order status: the status, the latest logistics, open after-sales requests, and "猜你想问".

A parcel with no scan for more than :data:`STALLED_AFTER` is *stalled*: the customer is told so,
with the last known place, a courier inquiry is opened (a follow-up task, once per order) and the
reply says what happens next and by when. Someone who has not shown the order is theirs gets what
a public tracking page shows — the state and the latest logistics step — and nothing personal
(no items, address, names or courier contact).
"""

from __future__ import annotations

from datetime import timedelta
from typing import ClassVar

from backoffice.followups import DUE_WITHIN, FollowUpKind
from dialogue import guard
from dialogue.flows.base import Flow
from dialogue.replies import register, say, status_label
from dialogue.turn import Reply, Turn
from shop import Order, OrderStatus

STALLED_AFTER = timedelta(hours=48)
"""No new scan for this long and the parcel is stalled (it is normally scanned several times a day)."""

register(
    {
        "request_progress": {
            "zh": "售后单 {request_id}（{type}）：{status}",
            "en": "After-sales request {request_id} ({type}): {status}",
        },
        "suggested_questions": {"zh": "猜你想问：", "en": "You might also ask:"},
        "order_status_public": {
            "zh": "订单 {order_id} 当前状态：{status}。",
            "en": "Order {order_id} is {status}.",
        },
        "public_note": {
            "zh": "（为保护隐私，商品和收货信息需验证后查看。）",
            "en": "(To protect your privacy, items and delivery details are shown once you've verified the order.)",
        },
        "stalled": {
            "zh": "这个包裹从 {since} 起已经 {days} 没有新的物流信息了，最后停留在：{place}。"
            "我已为您向快递公司发起查件，{hours} 小时内会有结果，查到后第一时间通知您；"
            "如果确认丢失，会为您补发或退款。",
            "en": "This parcel has had no new scan since {since} ({days}); it was last seen at: {place}. "
            "I've opened an inquiry with the courier; you'll hear back within {hours} hours, and if it is lost "
            "we'll resend it or refund you.",
        },
        "stalled_known": {
            "zh": "这个包裹从 {since} 起已经 {days} 没有新的物流信息了，最后停留在：{place}。"
            "查件已在进行中，{due} 前会有结果。",
            "en": "No new scan since {since} ({days}); last seen at: {place}. The courier inquiry is under way; "
            "you'll hear by {due}.",
        },
        "days_zh": {"zh": "{n} 天", "en": "{n} days"},
        "hours_zh": {"zh": "{n} 小时", "en": "{n} hours"},
    }
)


def last_scan(order: Order) -> tuple[str, str] | None:
    events = order.latest_logistics(1)
    if not events:
        return None
    return events[0].description, events[0].time.isoformat()


class OrderStatusFlow(Flow):
    name: ClassVar[str] = "order_status"
    intents: ClassVar[tuple[str, ...]] = ("order_status",)
    verify_owner: ClassVar[bool] = False  # the public view reveals nothing personal
    informational: ClassVar[bool] = True
    choose_template: ClassVar[str] = "choose_order"
    ask_template: ClassVar[str] = "ask_order_id"

    def follows_focus(self, turn: Turn) -> bool:
        return True  # "那这单呢" / a status question right after another about the same order

    async def proceed(self, turn: Turn, order: Order | None) -> None:
        assert order is not None
        turn.finish()
        language = turn.language
        owned = self._owned(turn, order)
        if owned:
            text = say(
                "order_status",
                language,
                order_id=order.order_id,
                items=_item_names(order, language),
                status=status_label(order.status.value, language),
            )
        else:
            text = say("order_status_public", language, order_id=order.order_id,
                       status=status_label(order.status.value, language))  # fmt: skip
        events = order.latest_logistics(3 if owned else 1)
        zone = self.zone()
        if events:
            timeline = "\n".join(f"{e.time.astimezone(zone):%Y-%m-%d %H:%M} {e.description}" for e in events)
            text += f"\n{say('logistics_header', language)}\n{timeline}"
        else:
            text += "\n" + say("no_logistics", language)
        if owned and self.context.aftersales is not None:
            for request in await self.context.aftersales.for_order(order.order_id):
                if request.open:
                    stages = " → ".join(
                        f"{s.label} {s.at.astimezone(zone):%m-%d %H:%M}" for s in request.customer_timeline(language)
                    )
                    text += "\n" + turn.text(
                        "request_progress", request_id=request.id, type=request.type_label(language), status=stages
                    )
        if not owned:
            text += "\n" + say("public_note", language)
        turn.replies.append(Reply(text))
        turn.act("answer", order=order.order_id)
        turn.slots["last_order_id"] = order.order_id
        turn.event("self_service_completed", flow=self.name, order_id=order.order_id)
        if await self._stalled(turn, order, named=True):
            return
        suggestions = (
            self.context.knowledge.suggestions(order.status.value, language, limit=3)
            if self.context.knowledge is not None and owned
            else []
        )
        if suggestions:
            turn.say(
                "suggested_questions",
                quick_replies=tuple(turn.choice("order_choice", summary=s.question_in(language)) for s in suggestions),
            )

    async def _stalled(self, turn: Turn, order: Order, *, named: bool) -> bool:
        """Say so when the parcel has stopped moving, and make sure someone is finding it."""
        if order.status is not OrderStatus.SHIPPED:
            return False
        events = order.latest_logistics(1)
        if not events or self.now() - events[0].time <= STALLED_AFTER:
            return False
        since = events[0].time.astimezone(self.zone())
        idle = self.now() - events[0].time
        days = (
            turn.text("days_zh", n=idle.days)
            if idle >= timedelta(days=1)
            else turn.text("hours_zh", n=int(idle.total_seconds() // 3600))
        )
        followups = self.context.followups
        if followups is None:
            return False
        guard.authorise(turn, "courier_inquiry", order.order_id, named=named)
        task, created = await followups.create(
            FollowUpKind.COURIER_INQUIRY,
            order.order_id,
            customer_id=turn.input.customer_id,
            conversation_id=turn.input.conversation_id,
            channel=turn.input.channel,
            note=f"最后扫描 {events[0].description}",
            once=True,
        )
        hours = int(DUE_WITHIN[FollowUpKind.COURIER_INQUIRY].total_seconds() // 3600)
        if created:
            turn.say("stalled", since=f"{since:%m-%d %H:%M}", days=days, place=events[0].description, hours=hours)
            turn.event("courier_inquiry_opened", order_id=order.order_id, followup_id=task.id)
        else:
            due = task.due_at.astimezone(self.zone())
            turn.say("stalled_known", since=f"{since:%m-%d %H:%M}", days=days, place=events[0].description,
                     due=f"{due:%m-%d %H:%M}")  # fmt: skip
        turn.act("inquiry", order=order.order_id)
        return True


def _item_names(order: Order, language: str) -> str:
    names = [item.name for item in order.items]
    joiner = "、" if language == "zh" else ", "
    shown = joiner.join(names[:2])
    if len(names) > 2:
        shown += f" 等{len(names)}件" if language == "zh" else f" and {len(names) - 2} more"
    return shown
