"""What the downstream systems tell us, in one shape whatever their wire format.

Every callback is parsed into a :class:`DownstreamEvent`: which system, a ``key`` that is the same
for a repeated delivery of the same news (the provider's event id, or the hash of the body for
providers that have none), what happened (:class:`EventKind`), what it is about (a request, a
pick-up, a tracking number, a follow-up task) and when it happened at the source. Callbacks may
arrive late, twice or out of order: ``occurred_at`` orders them, never their arrival.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from errors import NotFound, UserError


class System(StrEnum):
    PAYMENT = "payment"
    WAREHOUSE = "warehouse"
    COURIER = "courier"


class EventKind(StrEnum):
    # payment centre
    REFUND_SUCCEEDED = "refund.succeeded"
    REFUND_PARTIAL = "refund.partial"
    REFUND_FAILED = "refund.failed"
    # warehouse
    INTERCEPT_RESULT = "intercept.result"
    EXPEDITE_RESULT = "expedite.result"
    OUTBOUND_SHIPPED = "outbound.shipped"
    RETURN_RECEIVED = "return.received"
    QC_PASSED = "return.qc_passed"
    QC_FAILED = "return.qc_failed"
    # courier: pick-ups, parcels' scans, and answers to urges and inquiries
    PICKUP_ASSIGNED = "pickup.assigned"
    PICKUP_COLLECTED = "pickup.collected"
    PICKUP_FAILED = "pickup.failed"
    TRACKING = "tracking.scans"
    WORK_ORDER_RESULT = "courier.work_order_result"


class ScanState(StrEnum):
    """A parcel's state, as the tracking-push APIs number it (``state`` of the push)."""

    COLLECTED = "collected"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    SIGNED = "signed"
    EXCEPTION = "exception"
    RETURNED_TO_SENDER = "returned_to_sender"


FINAL_SCAN_STATES = frozenset({ScanState.SIGNED, ScanState.RETURNED_TO_SENDER})


class Scan(BaseModel):
    time: datetime
    state: ScanState
    context: str = Field(max_length=500)
    area: str | None = Field(default=None, max_length=100)


class DownstreamEvent(BaseModel):
    system: System
    key: str = Field(description="the same for a repeated delivery of the same news")
    kind: EventKind
    occurred_at: datetime
    request_id: str | None = None
    pickup_id: str | None = None
    followup_id: str | None = None
    tracking_number: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.system.value}:{self.key}"

    def subject(self) -> str:
        """What the event is about, for logs and the unknown-subject error."""
        for name in ("request_id", "pickup_id", "followup_id", "tracking_number"):
            if value := getattr(self, name):
                return f"{name} {value}"
        return "nothing"


class MalformedCallback(UserError):
    """The callback's body is not what the system's protocol sends; nothing was stored."""

    code = "malformed_body"


class UnknownSubject(NotFound):
    """The callback is about a request, pick-up, parcel or task this gateway does not know; nothing was stored."""

    code = "unknown_request"


def fen_to_yuan(value: Any, field: str) -> float:
    """Money on the wire is integer fen (分), as the payment APIs send it."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10**11:
        raise MalformedCallback(f"{field} must be a whole number of fen")
    return round(value / 100, 2)
