"""What every self-service flow shares: the services it acts through, choosing and verifying
the order, and reading yes/no answers.

A flow is a form: it keeps ``{"flow", "step", "data"}`` in the conversation's slots, asks for
what it lacks one step at a time, confirms before it changes anything, and always has an exit
(the customer cancels, or the case goes to a person).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, ClassVar
from zoneinfo import ZoneInfo

import intents as intent_registry
import textpatterns
from backoffice import HandoffDesk, Ticket, TicketDesk, TicketType
from backoffice.routing.pickups import PickupStore
from backoffice.surveys import SurveyDesk
from dialogue.replies import register, status_label
from dialogue.turn import Turn
from shop import Order, OrderService
from shop.aftersales import AfterSalesRequest, AfterSalesService, RequestType, Step
from shop.policy import AfterSalesPolicy

if TYPE_CHECKING:
    from dialogue.knowledge import KnowledgeBase

MAX_ORDER_CHOICES = 5
MAX_VERIFY_ATTEMPTS = 2

_YES = textpatterns.compile(
    r"^\s*(是|是的|对|对的|好|好的|好滴|嗯|嗯嗯|确认|确定|可以|行|没问题|冇问题|系|系啊|得|要得|中|yes|y|ok|okay|sure|confirm)"
    r"[。.!！~]*\s*$",
    textpatterns.IGNORECASE,
)
_NO = textpatterns.compile(
    r"^\s*(不|不是|不对|不要|不用|否|算了|取消|唔系|唔要|no|n|nope|cancel)[。.!！~]*\s*$", textpatterns.IGNORECASE
)
_CANCEL = textpatterns.compile(
    r"(算了|不用了|不办了|先不办|取消办理|取消申请|退出|唔使了|冇需要|never ?mind|forget it|stop)",
    textpatterns.IGNORECASE,
)
_DIGITS = textpatterns.compile(r"\d+")

register(
    {
        "flow_cancelled": {
            "zh": "好的，已为您取消本次办理，没有做任何修改。还有其他可以帮您的吗？",
            "en": "All right, I've stopped here and changed nothing. Anything else I can help with?",
        },
        "which_order_for": {
            "zh": "请问是哪一个订单要办理{topic}？\n{choices}",
            "en": "Which order is the {topic} for?\n{choices}",
        },
        "ask_order_id_for": {
            "zh": "请提供要办理{topic}的订单号。",
            "en": "Please tell me the order number for the {topic}.",
        },
        "verify_phone": {
            "zh": "为了保护您的订单信息，请提供订单 {order_id} 的收货手机号进行验证。",
            "en": "To protect your order, please send the phone number on order {order_id}.",
        },
        "verify_failed": {
            "zh": "手机号与订单不一致，请核对后重新发送。",
            "en": "That number doesn't match the order. Please check and send it again.",
        },
        "verify_ok": {"zh": "验证通过。", "en": "Thanks, verified."},
        "order_choice": {"zh": "{summary}", "en": "{summary}"},
        "already_requested": {
            "zh": "您已为订单 {order_id} 提交过{type}申请（售后单号 {request_id}，{channel_note}），"
            "当前状态：{status}。无需重复提交。",
            "en": "You already have a {type} request for order {order_id} ({request_id}, {channel_note}); "
            "it is {status}. No need to submit it again.",
        },
        "channel_note_same": {"zh": "在本渠道提交", "en": "made here"},
        "channel_note_other": {"zh": "通过{channel}提交", "en": "made via {channel}"},
        "yes_no": {"zh": "请回复“确认”或“取消”。", "en": 'Please reply "yes" or "no".'},
        "quick_yes": {"zh": "确认", "en": "Yes"},
        "quick_no": {"zh": "取消", "en": "No"},
    }
)


@dataclass(slots=True)
class FlowContext:
    """The services flows act through; the dialogue never touches the database directly."""

    orders: OrderService
    handoff: HandoffDesk
    aftersales: AfterSalesService | None = None
    tickets: TicketDesk | None = None
    policy: AfterSalesPolicy = field(default_factory=AfterSalesPolicy)
    knowledge: KnowledgeBase | None = None
    pickups: PickupStore | None = None
    surveys: SurveyDesk | None = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    timezone: str = "Asia/Shanghai"
    """The shop's time zone: what "today" and "tomorrow" mean for deliveries and pick-ups."""
    channel_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """What each channel is called, per language (the channel registry's labels)."""


def is_yes(turn: Turn) -> bool:
    return bool(_YES.match(turn.input.text)) or (turn.intent == "affirm" and not _NO.match(turn.input.text))


def is_no(turn: Turn) -> bool:
    return bool(_NO.match(turn.input.text)) or turn.intent == "deny"


def wants_to_cancel(turn: Turn) -> bool:
    return bool(_CANCEL.search(turn.input.text))


def tell_existing(turn: Turn, request: AfterSalesRequest, channel_labels: Mapping[str, Mapping[str, str]]) -> None:
    """One problem, one request: the customer is told about the open one instead of a second."""
    if request.channel and request.channel != turn.input.channel:
        names = channel_labels.get(request.channel, {})
        note = turn.text("channel_note_other", channel=names.get(turn.language, request.channel))
    else:
        note = turn.text("channel_note_same")
    turn.say(
        "already_requested",
        order_id=request.order_id,
        type=request.type_label(turn.language),
        request_id=request.id,
        channel_note=note,
        status=request.customer_status(turn.language),
    )
    turn.event("duplicate_request", request_id=request.id, type=request.type.value, channel=turn.input.channel)


def unfinished(request: AfterSalesRequest, turn: Turn) -> bool:
    """A request this customer's earlier try created but did not take past its first step
    (the gateway stopped mid-turn): finish it instead of calling it a duplicate."""
    return request.status is Step.APPLIED and request.customer_id == turn.input.customer_id


def order_summary(order: Order, language: str) -> str:
    first = order.items[0].name
    more = len(order.items) - 1
    if more:
        first += f" 等{len(order.items)}件" if language == "zh" else f" +{more}"
    return f"{order.order_id} {first}（{status_label(order.status.value, language)}）"


class Flow(ABC):
    """One self-service form. Subclasses name the intents that start them and implement
    :meth:`proceed` (the order is known and verified) and :meth:`on_step` (later answers)."""

    name: ClassVar[str]
    intents: ClassVar[tuple[str, ...]]
    needs_order: ClassVar[bool] = True
    verify_owner: ClassVar[bool] = True
    """Acting on an order (money, goods, address) needs it to be the customer's; a status lookup does not."""
    reuse_last_order: ClassVar[bool] = True
    """Act on the order this conversation was last about instead of asking again."""
    choose_template: ClassVar[str] = "which_order_for"
    ask_template: ClassVar[str] = "ask_order_id_for"

    def __init__(self, context: FlowContext) -> None:
        self.context = context

    def topic(self, turn: Turn) -> str:
        """The flow's task as customers call it (the intent registry's topic of its first intent)."""
        return intent_registry.topic(self.intents[0], turn.language)

    @property
    def orders(self) -> OrderService:
        return self.context.orders

    @property
    def policy(self) -> AfterSalesPolicy:
        return self.context.policy

    async def start(self, turn: Turn) -> None:
        form = turn.begin(self.name, "start")
        self.remember(turn, form["data"])
        if not self.needs_order:
            await self.proceed(turn, None)
            return
        order = await self._pick_order(turn)
        if order is not None:
            await self.proceed(turn, order)

    async def resume(self, turn: Turn) -> bool:
        """Take this message as the answer to the flow's question; False when it is not one."""
        form = turn.form
        assert form is not None
        step, data = form["step"], form["data"]
        if step == "order":
            order_id = turn.entity("order_id")
            if not order_id:
                return False
            data["order_id"] = str(order_id)
            order = await self._pick_order(turn)
            if order is not None:
                await self.proceed(turn, order)
            return True
        if step == "verify":
            return await self._verify(turn, data)
        order = await self.orders.get(data["order_id"]) if data.get("order_id") else None
        return await self.on_step(turn, step, data, order)

    def remember(self, turn: Turn, data: dict[str, Any]) -> None:  # noqa: B027 (optional hook)
        """Keep what the opening message said that the flow will need later: choosing or
        verifying the order may take turns in between, whose messages do not repeat it."""

    @abstractmethod
    async def proceed(self, turn: Turn, order: Order | None) -> None:
        """The flow's work once its order is chosen (and verified where it acts on it)."""

    async def on_step(self, turn: Turn, step: str, data: dict[str, Any], order: Order | None) -> bool:
        """Answers to the flow's own questions; False when the message is not an answer."""
        return False

    # -- choosing and verifying the order ------------------------------------------------

    async def _pick_order(self, turn: Turn) -> Order | None:
        form = turn.form
        assert form is not None
        data = form["data"]
        order_id = data.get("order_id") or turn.entity("order_id")
        topic = self.topic(turn)
        if order_id:
            order = await self.orders.get(str(order_id))
            if order is None:
                data.pop("order_id", None)
                turn.step("order")
                turn.say("order_not_found", order_id=order_id)
                turn.event("order_not_found", order_id=str(order_id), flow=self.name)
                return None
        else:
            identities = turn.input.identities
            recent = await self.orders.recent_for_customer(
                phone=identities.get("phone"), email=identities.get("email"), limit=MAX_ORDER_CHOICES
            )
            recent = [o for o in recent if self.order_is_candidate(o)] or recent
            last = turn.slots.get("last_order_id") if self.reuse_last_order else None
            chosen = next((o for o in recent if o.order_id == last), None)
            if chosen is None and last and not recent:
                chosen = await self.orders.get(str(last))
            if chosen is None and len(recent) == 1:
                chosen = recent[0]
            if chosen is None:
                turn.step("order")
                if recent:
                    lines = "\n".join(f"{i}. {order_summary(o, turn.language)}" for i, o in enumerate(recent, start=1))
                    choices = tuple(
                        turn.choice("order_choice", payload=o.order_id, summary=order_summary(o, turn.language))
                        for o in recent
                    )
                    turn.say(self.choose_template, quick_replies=choices, topic=topic, choices=lines)
                else:
                    turn.say(self.ask_template, topic=topic)
                return None
            order = chosen
        data["order_id"] = order.order_id
        turn.slots["last_order_id"] = order.order_id
        if self.verify_owner and not self._owned(turn, order):
            turn.step("verify", verify_attempts=0)
            turn.say("verify_phone", order_id=order.order_id)
            return None
        return order

    def order_is_candidate(self, order: Order) -> bool:
        """Orders this flow can act on, offered first when the customer has several."""
        return True

    @staticmethod
    def _owned(turn: Turn, order: Order) -> bool:
        return order.belongs_to(turn.input.identities) or order.order_id in turn.slots.get("verified_orders", [])

    async def _verify(self, turn: Turn, data: dict[str, Any]) -> bool:
        order = await self.orders.get(data["order_id"])
        if order is None:
            turn.finish()
            return False
        given = turn.entity("phone") or next(iter(_DIGITS.findall(turn.input.text.replace(" ", ""))), None)
        if given is None:
            if self._owned(turn, order):  # a shared contact card linked the phone this turn
                return await self._verified(turn, order)
            return False
        if order.customer.phone and str(given)[-11:] == order.customer.phone[-11:]:
            return await self._verified(turn, order)
        attempts = int(data.get("verify_attempts", 0)) + 1
        data["verify_attempts"] = attempts
        turn.event("order_verification_failed", order_id=order.order_id, attempts=attempts)
        if attempts >= MAX_VERIFY_ATTEMPTS:
            turn.finish()
            turn.request_handoff("verification_failed", order_id=order.order_id)
            return True
        turn.say("verify_failed")
        return True

    async def _verified(self, turn: Turn, order: Order) -> bool:
        verified = list(turn.slots.get("verified_orders", []))
        turn.slots["verified_orders"] = [*verified, order.order_id]
        turn.say("verify_ok")
        turn.step("start")
        await self.proceed(turn, order)
        return True

    # -- after-sales requests ----------------------------------------------------------

    async def open_request(self, order: Order, *types: RequestType) -> AfterSalesRequest | None:
        """The order's open request of one of these types, if any."""
        if self.context.aftersales is None:
            return None
        for request in await self.context.aftersales.for_order(order.order_id):
            if request.open and request.type in types:
                return request
        return None

    async def told_open_request(self, turn: Turn, order: Order, *types: RequestType) -> bool:
        """True (and the customer told, the flow ended) when such a request is open already."""
        request = await self.open_request(order, *types)
        if request is None:
            return False
        turn.finish()
        tell_existing(turn, request, self.context.channel_labels)
        return True

    async def new_request(self, turn: Turn, order: Order, type: RequestType, **fields: Any) -> AfterSalesRequest | None:
        """Record the customer's request and end the flow's questions; None when an open request
        for the same thing exists (the customer is told about it instead)."""
        aftersales = self.context.aftersales
        assert aftersales is not None
        request, created = await aftersales.create(
            type=type,
            order_id=order.order_id,
            customer_id=turn.input.customer_id,
            actor="customer",
            conversation_id=turn.input.conversation_id,
            channel=turn.input.channel,
            **fields,
        )
        turn.finish()
        if not created and not unfinished(request, turn):
            tell_existing(turn, request, self.context.channel_labels)
            return None
        return request

    async def to_review(
        self,
        turn: Turn,
        order: Order,
        request: AfterSalesRequest,
        ticket_type: TicketType,
        summary: str,
        *,
        amount: float | None = None,
        note: str | None = None,
    ) -> Ticket | None:
        """A person decides: the request moves to review with a ticket linked to it. None when a
        backoffice rule decided at once (the customer is told here)."""
        aftersales, tickets = self.context.aftersales, self.context.tickets
        assert aftersales is not None and tickets is not None
        if request.status is Step.APPLIED:
            request = await aftersales.advance(request.id, Step.REVIEWING, actor="system:self_service", note=note)
        ticket, _ = await tickets.open(
            type=ticket_type,
            customer_id=turn.input.customer_id,
            summary=summary,
            conversation_id=turn.input.conversation_id,
            channel=turn.input.channel,
            order_id=order.order_id,
            request_id=request.id,
            reason=request.reason,
            evidence=request.evidence,
            amount=order.amount if amount is None else amount,
            text=turn.normalized_text,
            quiet=True,
        )
        turn.event("aftersales_submitted", flow=self.name, request_id=request.id, ticket_id=ticket.id)
        if ticket.decision is not None and ticket.decision.by.startswith("system:"):
            told = await tickets.decision_notice(ticket, turn.language)
            if told:
                turn.say_text(told)
            decision = ticket.decision
            turn.event("ticket_decided", ticket_id=ticket.id, rule=decision.rule, outcome=decision.outcome)
            if decision.outcome == "approved":
                turn.event("self_service_completed", flow=self.name, order_id=order.order_id, request_id=request.id)
            return None
        return ticket

    # -- shared wording ----------------------------------------------------------------

    @staticmethod
    def confirm_choices(turn: Turn) -> tuple[Any, ...]:
        return (turn.choice("quick_yes"), turn.choice("quick_no"))

    async def answer_confirmation(self, turn: Turn, on_yes: Callable[[], Awaitable[None]]) -> bool:
        """The answer to "confirm?": yes acts, no ends the flow unchanged, anything else asks again."""
        if is_yes(turn):
            await on_yes()
        elif is_no(turn):
            turn.finish()
            turn.say("flow_cancelled")
        else:
            turn.say("yes_no", quick_replies=self.confirm_choices(turn))
        return True

    def now(self) -> datetime:
        return self.context.clock()

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.context.timezone)

    def today(self) -> date:
        return self.now().astimezone(self.zone()).date()
