"""The refund report (退款助手) for merchants: refund and return-and-refund requests created in a
date range, their counts and amounts per day or week, by reason, by status and by type, and how
many the shop's rules decided without a person.

Reads ``aftersales_requests`` as ``shop.aftersales`` writes it; knows nothing of HTTP.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pymongo.asynchronous.database import AsyncDatabase

from store.mongo import stored_datetime

Granularity = Literal["day", "week"]
REFUND_TYPES = ("refund", "return_refund")
COMPLETED = "completed"
REJECTED_OR_CANCELLED = ("rejected", "cancelled")
NO_REASON = ""


def _period_key(day: date, granularity: Granularity) -> str:
    if granularity == "day":
        return day.isoformat()
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def period_of(moment: datetime, zone: ZoneInfo, granularity: Granularity) -> str:
    """The day (``2026-11-30``) or the ISO week (``2026-W49``) the moment falls in."""
    return _period_key(moment.astimezone(zone).date(), granularity)


def _periods(start: datetime, end: datetime, zone: ZoneInfo, granularity: Granularity) -> list[str]:
    first = start.astimezone(zone).date()
    last = (end - timedelta(microseconds=1)).astimezone(zone).date()
    keys: list[str] = []
    day: date = first
    while day <= last:
        key = _period_key(day, granularity)
        if not keys or keys[-1] != key:
            keys.append(key)
        day += timedelta(days=1)
    return keys


def _bucket() -> dict[str, Any]:
    return {"count": 0, "amount": 0.0, "completed": 0, "completed_amount": 0.0, "rejected": 0, "automatic": 0}


def _add(bucket: dict[str, Any], doc: dict[str, Any]) -> None:
    amount = float(doc.get("amount") or 0.0)
    bucket["count"] += 1
    bucket["amount"] = round(bucket["amount"] + amount, 2)
    if doc.get("status") == COMPLETED:
        bucket["completed"] += 1
        bucket["completed_amount"] = round(bucket["completed_amount"] + amount, 2)
    if doc.get("status") in REJECTED_OR_CANCELLED:
        bucket["rejected"] += 1
    if str(doc.get("decided_by") or "").startswith("system:"):
        bucket["automatic"] += 1


async def refund_requests(db: AsyncDatabase[dict[str, Any]], start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Refund requests created in ``[start, end)``. ``created_at`` is an ISO string there
    (pydantic's JSON dump): the store narrows by string with a day's margin, the exact range is
    applied on the parsed time."""
    low, high = (start - timedelta(days=1)).isoformat(), (end + timedelta(days=1)).isoformat()
    found = []
    cursor = db["aftersales_requests"].find(
        {"type": {"$in": list(REFUND_TYPES)}, "created_at": {"$gte": low, "$lt": high}},
        {"_id": 1, "type": 1, "status": 1, "amount": 1, "reason": 1, "created_at": 1, "decided_by": 1,
         "order_id": 1, "channel": 1, "conversation_id": 1},
    )  # fmt: skip
    async for doc in cursor:
        created = stored_datetime(doc.get("created_at"))
        if created is not None and start <= created < end:
            doc["created"] = created
            found.append(doc)
    found.sort(key=lambda d: d["created"])
    return found


async def refund_report(
    db: AsyncDatabase[dict[str, Any]],
    start: datetime,
    end: datetime,
    zone: ZoneInfo,
    granularity: Granularity = "day",
) -> dict[str, Any]:
    requests = await refund_requests(db, start, end)
    total = _bucket()
    periods: dict[str, dict[str, Any]] = {key: _bucket() for key in _periods(start, end, zone, granularity)}
    reasons: dict[str, dict[str, Any]] = defaultdict(_bucket)
    statuses: dict[str, int] = defaultdict(int)
    types: dict[str, dict[str, Any]] = defaultdict(_bucket)
    for doc in requests:
        _add(total, doc)
        _add(periods.setdefault(period_of(doc["created"], zone, granularity), _bucket()), doc)
        _add(reasons[str(doc.get("reason") or NO_REASON)], doc)
        _add(types[str(doc.get("type"))], doc)
        statuses[str(doc.get("status"))] += 1
    return {
        "granularity": granularity,
        "total": total,
        "periods": [{"period": key, **value} for key, value in sorted(periods.items())],
        "reasons": sorted(({"reason": k, **v} for k, v in reasons.items()), key=lambda r: (-r["count"], r["reason"])),
        "types": [{"type": k, **v} for k, v in sorted(types.items())],
        "statuses": dict(sorted(statuses.items())),
        "requests": [
            {
                "id": str(d["_id"]), "type": d.get("type"), "status": d.get("status"), "amount": d.get("amount", 0.0),
                "reason": d.get("reason"), "created_at": d["created"].isoformat(), "order_id": d.get("order_id"),
                "channel": d.get("channel"), "automatic": str(d.get("decided_by") or "").startswith("system:"),
            }
            for d in requests[-200:]
        ],
    }  # fmt: skip
