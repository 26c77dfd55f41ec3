"""History association: is this customer making many money/goods claims (an abnormal claim
pattern), have they raised the same kind of problem before, and do other customers report
product problems with the same SKU (a possible product defect)? The flags are shown on the
ticket with the tickets behind them; the thresholds are configuration.

Reads tickets through the function it is given; writes nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from backoffice.classify import CATEGORY_LABELS
from backoffice.config import HistoryRules
from backoffice.lifecycle import DECISION_TYPES, TicketType
from backoffice.ticket_record import HistoryFlag, Ticket

PRODUCT_CATEGORIES = frozenset({"product_damage", "quality", "not_as_described", "food_safety"})
"""Categories that say something about the product itself (history per SKU)."""

TicketSource = Callable[[dict[str, Any]], AsyncIterator[Ticket]]


@dataclass(slots=True)
class HistoryFindings:
    flags: list[HistoryFlag]
    earlier_complaint: bool
    defect_related: list[str]
    """Open tickets of other customers about the same SKU: they get the defect flag too."""
    defect_flag: HistoryFlag | None
    claims_in_window: int
    """The customer's other money/goods tickets in the window (what claim-count rules look at)."""


async def find_history(
    tickets: TicketSource,
    rules: HistoryRules,
    *,
    customer_id: str,
    skus: list[str],
    category: str,
    ticket_type: TicketType,
    now: datetime,
) -> HistoryFindings:
    since = now - timedelta(days=rules.window_days)
    mine = [t async for t in tickets({"customer_id": customer_id}) if t.created_at >= since]
    flags: list[HistoryFlag] = []
    claims = [t for t in mine if t.type in DECISION_TYPES]
    if ticket_type in DECISION_TYPES and len(claims) + 1 >= rules.customer_claims:
        flags.append(
            HistoryFlag(
                kind="abnormal_claim_pattern",
                detail=f"该客户 {rules.window_days} 天内第 {len(claims) + 1} 次退款/赔付类申请 "
                f"({len(claims) + 1} money/goods claims in {rules.window_days} days)",
                related=[t.id for t in claims],
            )
        )
    same = [t for t in mine if t.category == category and category != "other"]
    if same:
        flags.append(
            HistoryFlag(
                kind="repeat_issue",
                detail=f"该客户此前反映过同类问题：{CATEGORY_LABELS.get(category, {}).get('zh', category)} "
                f"({len(same)} earlier)",
                related=[t.id for t in same],
            )
        )
    defect_related: list[str] = []
    defect_flag: HistoryFlag | None = None
    if category in PRODUCT_CATEGORIES:
        sku_since = now - timedelta(days=rules.sku_window_days)
        for sku in skus:
            others = [
                t
                # The category condition lets a store without array indexes narrow by category first.
                async for t in tickets({"skus": sku, "category": {"$in": sorted(PRODUCT_CATEGORIES)}})
                if t.created_at >= sku_since
            ]
            customers = {t.customer_id for t in others} | {customer_id}
            if len(customers) >= rules.sku_customers:
                defect_flag = HistoryFlag(
                    kind="possible_product_defect",
                    detail=f"商品 {sku} 近 {rules.sku_window_days} 天有 {len(customers)} 位客户反映商品问题 "
                    f"({len(customers)} customers reported product problems with {sku})",
                    related=[t.id for t in others],
                )
                flags.append(defect_flag)
                # Open tickets not flagged yet get the flag too; flagged ones keep theirs.
                defect_related = [t.id for t in others if t.open and "possible_product_defect" not in t.flag_kinds()]
                break
    earlier_complaint = any(t.type is TicketType.COMPLAINT for t in mine)
    return HistoryFindings(flags, earlier_complaint, defect_related, defect_flag, len(claims))
