"""Problem and refund analytics for the quality team: tickets by category and by SKU (with the
possible-product-defect flag the backoffice sets), questions the knowledge base could not answer
grouped into clusters, IVR handling time per scenario and nuisance calls, and refund records
searched by order, request, status and date.

Reads ``tickets``, ``events`` (``knowledge_miss``, ``call_ended``, ``call_rejected``) and
``aftersales_requests`` as the other packages write them; days are the shop's time zone. Knows
nothing of HTTP or how figures are drawn.
"""

from __future__ import annotations

import statistics
import unicodedata
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pymongo.asynchronous.database import AsyncDatabase

from quality.metrics import percentile
from quality.refunds import REFUND_TYPES
from store.mongo import stored_datetime

DEFECT_FLAG = "possible_product_defect"
"""The history flag the backoffice sets when several customers report the same SKU."""
CLOSED_TICKET_STATES = frozenset({"resolved", "closed"})
CLUSTER_SIMILARITY = 0.34
"""Two questions share a cluster when their character bigrams overlap this much (Jaccard)."""
MAX_ROWS = 500


def _days(start: datetime, end: datetime, zone: ZoneInfo) -> list[str]:
    first = start.astimezone(zone).date()
    last = (end - timedelta(microseconds=1)).astimezone(zone).date()
    return [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


async def _created_between(
    db: AsyncDatabase[dict[str, Any]], collection: str, query: dict[str, Any], start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """Documents whose ``created_at`` (an ISO string: pydantic's JSON dump) falls in ``[start, end)``:
    narrowed by string with a day's margin, then exactly on the parsed time."""
    low, high = (start - timedelta(days=1)).isoformat(), (end + timedelta(days=1)).isoformat()
    found = []
    async for doc in db[collection].find({**query, "created_at": {"$gte": low, "$lt": high}}):
        created = stored_datetime(doc.get("created_at"))
        if created is not None and start <= created < end:
            doc["created"] = created
            found.append(doc)
    return found


# -- problems by category and SKU ----------------------------------------------------------


async def problems_report(
    db: AsyncDatabase[dict[str, Any]], start: datetime, end: datetime, zone: ZoneInfo
) -> dict[str, Any]:
    """Tickets created in the range by category (with a daily series) and by SKU; an SKU is
    flagged when any of its tickets carries the possible-product-defect flag."""
    tickets = await _created_between(db, "tickets", {}, start, end)
    days = _days(start, end, zone)
    categories: dict[str, dict[str, Any]] = {}
    skus: dict[str, dict[str, Any]] = {}
    for doc in tickets:
        category = str(doc.get("category") or "other")
        row = categories.setdefault(
            category, {"category": category, "tickets": 0, "open": 0, "amount": 0.0, "by_day": Counter()}
        )
        row["tickets"] += 1
        row["open"] += str(doc.get("status")) not in CLOSED_TICKET_STATES
        row["amount"] = round(row["amount"] + float(doc.get("amount") or 0.0), 2)
        row["by_day"][doc["created"].astimezone(zone).date().isoformat()] += 1
        flagged = any((f or {}).get("kind") == DEFECT_FLAG for f in doc.get("flags") or [])
        for sku in dict.fromkeys(str(s) for s in doc.get("skus") or []):
            item = skus.setdefault(sku, {"sku": sku, "tickets": 0, "customers": set(), "categories": Counter(),
                                         "repeat_defect": False, "ticket_ids": []})  # fmt: skip
            item["tickets"] += 1
            item["customers"].add(str(doc.get("customer_id")))
            item["categories"][category] += 1
            item["repeat_defect"] = item["repeat_defect"] or flagged
            if len(item["ticket_ids"]) < 20:
                item["ticket_ids"].append(str(doc["_id"]))
    by_category = sorted(categories.values(), key=lambda r: (-r["tickets"], r["category"]))
    for row in by_category:
        row["by_day"] = [row["by_day"].get(day, 0) for day in days]
    by_sku = sorted(skus.values(), key=lambda r: (-r["repeat_defect"], -r["tickets"], r["sku"]))[:100]
    for item in by_sku:
        item["customers"] = len(item["customers"])
        item["categories"] = dict(item["categories"].most_common())
    return {"tickets": len(tickets), "days": days, "categories": by_category, "skus": by_sku}


# -- knowledge-base misses -----------------------------------------------------------------


def _key(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).lower()
    return "".join(c for c in folded if c.isalnum())


def _bigrams(text: str) -> frozenset[str]:
    key = _key(text)
    if len(key) < 2:
        return frozenset({key}) if key else frozenset()
    return frozenset(key[i : i + 2] for i in range(len(key) - 1))


_FUNCTION_CHARACTERS = frozenset("吗呢的了吧啊呀哦么嘛我你您他她们是有在要能会可以怎请问下个一这那还就都也和")
"""Characters that carry no topic (particles, pronouns, 可以/能/怎么): left out of comparisons."""


def _characters(text: str) -> frozenset[str]:
    return frozenset(c for c in _key(text) if c not in _FUNCTION_CHARACTERS)


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def _similarity(a: tuple[frozenset[str], frozenset[str]], b: tuple[frozenset[str], frozenset[str]]) -> float:
    """The larger of the content characters' and the bigrams' overlap: short Chinese questions
    share words (专票, 运费险) more reliably than whole phrases."""
    return max(_jaccard(a[0], b[0]), _jaccard(a[1], b[1]))


def cluster_questions(texts: list[str], threshold: float = CLUSTER_SIMILARITY) -> list[list[str]]:
    """Questions grouped by shared wording (content characters and bigrams; Chinese has no
    spaces): each joins the cluster whose questions it overlaps most on average, if enough;
    the biggest cluster first."""
    counts = Counter(t.strip() for t in texts if t.strip())
    clusters: list[tuple[list[tuple[frozenset[str], frozenset[str]]], list[str]]] = []
    for text, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        grams = (_characters(text), _bigrams(text))
        best, best_score = None, threshold
        for index, (members, _) in enumerate(clusters):
            score = statistics.fmean(_similarity(grams, m) for m in members)
            if score >= best_score:
                best, best_score = index, score
        if best is None:
            clusters.append(([grams], [text]))
        else:
            clusters[best][0].append(grams)
            clusters[best][1].append(text)
    grouped = [[text for text in members for _ in range(counts[text])] for _, members in clusters]
    return sorted(grouped, key=len, reverse=True)


async def knowledge_misses(
    db: AsyncDatabase[dict[str, Any]], start: datetime, end: datetime, zone: ZoneInfo
) -> dict[str, Any]:
    """``knowledge_miss`` events (a policy question the knowledge base had no answer for) grouped
    into clusters of similar questions, biggest first."""
    events = [doc async for doc in db["events"].find({"name": "knowledge_miss", "at": {"$gte": start, "$lt": end}})]
    texts = [str((e.get("data") or {}).get("text") or "") for e in events]
    by_text: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event, text in zip(events, texts, strict=True):
        by_text[text.strip()].append(event)
    clusters = []
    for members in cluster_questions(texts):
        distinct = list(dict.fromkeys(members))
        seen = [e for text in distinct for e in by_text[text]]
        last = max((stored_datetime(e.get("at")) for e in seen), default=None, key=lambda d: d or datetime.min)
        clusters.append({
            "question": distinct[0], "misses": len(members), "variants": len(distinct), "examples": distinct[:6],
            "conversations": list(dict.fromkeys(str(e.get("conversation_id")) for e in seen
                                                if e.get("conversation_id")))[:10],
            "last": last.astimezone(zone).isoformat() if last else None,
        })  # fmt: skip
    return {"misses": len(events), "clusters": clusters[:MAX_ROWS]}


# -- IVR -----------------------------------------------------------------------------------


def mask_caller(number: str) -> str:
    """A caller's number in a report: the country and network prefix and the last two digits."""
    digits = number.strip()
    if len(digits) <= 6:
        return "*" * len(digits)
    return digits[: min(6, len(digits) - 4)] + "*" * (len(digits) - min(6, len(digits) - 4) - 2) + digits[-2:]


async def ivr_report(
    db: AsyncDatabase[dict[str, Any]], start: datetime, end: datetime, zone: ZoneInfo
) -> dict[str, Any]:
    """Handling time per scenario (``call_ended``: the call's length, median, p90, mean, and how
    the calls ended) and nuisance calls (``call_rejected``: by reason and day, the busiest callers
    masked)."""
    ended = [doc async for doc in db["events"].find({"name": "call_ended", "at": {"$gte": start, "$lt": end}})]
    scenarios: dict[str, dict[str, Any]] = {}
    for doc in ended:
        data = doc.get("data") or {}
        scenario = str(data.get("scenario") or "")
        row = scenarios.setdefault(scenario, {"scenario": scenario, "seconds": [], "outcomes": Counter()})
        if isinstance(data.get("duration_seconds"), int | float):
            row["seconds"].append(float(data["duration_seconds"]))
        row["outcomes"][str(data.get("outcome") or "")] += 1
    by_scenario = []
    for row in scenarios.values():
        seconds = sorted(row.pop("seconds"))
        by_scenario.append({
            **row, "calls": sum(row["outcomes"].values()), "outcomes": dict(row["outcomes"]),
            "median_seconds": round(statistics.median(seconds), 1) if seconds else None,
            "p90_seconds": round(percentile(seconds, 0.9), 1) if seconds else None,
            "mean_seconds": round(statistics.fmean(seconds), 1) if seconds else None,
        })  # fmt: skip
    by_scenario.sort(key=lambda r: (-r["calls"], r["scenario"]))
    rejected = [doc async for doc in db["events"].find({"name": "call_rejected", "at": {"$gte": start, "$lt": end}})]
    days = _days(start, end, zone)
    per_day: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    callers: Counter[str] = Counter()
    for doc in rejected:
        data = doc.get("data") or {}
        at = stored_datetime(doc.get("at"))
        if at is not None:
            per_day[at.astimezone(zone).date().isoformat()] += 1
        reasons[str(data.get("reason") or "")] += 1
        callers[str(data.get("caller") or "")] += 1
    return {
        "calls": len(ended),
        "scenarios": by_scenario,
        "nuisance": {
            "rejected": len(rejected),
            "callers": len(callers),
            "reasons": dict(reasons.most_common()),
            "days": days,
            "by_day": [per_day.get(day, 0) for day in days],
            "top_callers": [{"caller": mask_caller(c), "calls": n} for c, n in callers.most_common(10)],
        },
    }


# -- refund records ------------------------------------------------------------------------


async def refund_records(
    db: AsyncDatabase[dict[str, Any]],
    start: datetime,
    end: datetime,
    zone: ZoneInfo,
    *,
    order_id: str | None = None,
    request_id: str | None = None,
    status: str | None = None,
    limit: int = MAX_ROWS,
) -> dict[str, Any]:
    """Refund and return-and-refund requests matching every given filter, newest first. A request
    id finds its request whatever its date; otherwise requests created in the range."""
    query: dict[str, Any] = {"type": {"$in": list(REFUND_TYPES)}}
    if order_id:
        query["order_id"] = order_id
    if status:
        query["status"] = status
    if request_id:
        docs = [d async for d in db["aftersales_requests"].find({**query, "_id": request_id})]
        for doc in docs:
            doc["created"] = stored_datetime(doc.get("created_at"))
    else:
        docs = await _created_between(db, "aftersales_requests", query, start, end)
    docs.sort(key=lambda d: d.get("created") or datetime.min.replace(tzinfo=zone), reverse=True)
    rows: list[dict[str, Any]] = []
    for doc in docs[:limit]:
        created = doc.get("created")
        finished = next((e for e in reversed(doc.get("timeline") or []) if e.get("step") == "completed"), None)
        rows.append({
            "id": str(doc["_id"]), "order_id": doc.get("order_id"), "type": doc.get("type"),
            "status": doc.get("status"), "amount": float(doc.get("amount") or 0.0), "reason": doc.get("reason"),
            "channel": doc.get("channel"), "customer_id": doc.get("customer_id"),
            "created_at": created.astimezone(zone).isoformat() if isinstance(created, datetime) else None,
            "day": created.astimezone(zone).date().isoformat() if isinstance(created, datetime) else None,
            "refunded_at": finished.get("at") if finished else None,
            "automatic": str(doc.get("decided_by") or "").startswith("system:"), "ticket_id": doc.get("ticket_id"),
        })  # fmt: skip
    amount = round(sum(float(r["amount"]) for r in rows), 2)
    return {"total": len(docs), "shown": len(rows), "amount": amount, "rows": rows}


def day_bounds(first: date, last: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """``[first 00:00, last+1 00:00)`` in the shop's time zone."""
    return (
        datetime.combine(first, datetime.min.time(), zone),
        datetime.combine(last + timedelta(days=1), datetime.min.time(), zone),
    )
