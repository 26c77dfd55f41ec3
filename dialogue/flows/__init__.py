"""The self-service flows, one module per after-sales task; each is a form (see ``base``)."""

from dialogue.flows.base import Flow, FlowContext
from dialogue.flows.claims import CompensationFlow, PriceProtectionFlow, ResendFlow
from dialogue.flows.complaint import ComplaintFlow
from dialogue.flows.followup import FollowUpFlow
from dialogue.flows.invoice import InvoiceFlow
from dialogue.flows.order_change import ChangeAddressFlow, ChangeDeliveryTimeFlow
from dialogue.flows.order_status import OrderStatusFlow
from dialogue.flows.policy import PolicyFlow
from dialogue.flows.refund import RefundFlow
from dialogue.flows.requests import RequestsFlow
from dialogue.flows.returns import ExchangeFlow, ReturnRefundFlow
from dialogue.flows.urge import UrgeFlow

FLOW_CLASSES: tuple[type[Flow], ...] = (
    OrderStatusFlow,
    ChangeAddressFlow,
    ChangeDeliveryTimeFlow,
    RefundFlow,
    ReturnRefundFlow,
    ExchangeFlow,
    ResendFlow,
    CompensationFlow,
    PriceProtectionFlow,
    ComplaintFlow,
    UrgeFlow,
    InvoiceFlow,
    PolicyFlow,
    RequestsFlow,
    FollowUpFlow,
)

__all__ = ["FLOW_CLASSES", "Flow", "FlowContext"]
