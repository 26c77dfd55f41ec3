"""The post-peak report (大促复盘): what a promotion peak brought in and how it was served, over
days ``[first, last]`` in the shop's time zone.

- volumes: customer messages, conversations and customers by channel and by intent, and
  messages per hour;
- self-service completion and transfer-to-human rates, overall, by channel and by intent, and
  first agent response and hand-off resolution times: the dashboard's own figures
  (``quality.metrics``), not a second definition of them;
- refunds: counts, amounts, reasons, types and statuses (``quality.refunds``);
- delivery failures: replies the outbox gave up on (``delivery_failed`` events) by channel.

Volumes count every inbound message by its own NLU intent (``understanding.intent``); a
conversation or customer is counted under each intent it has a message of. The rates group
conversations by their topic, as the dashboard does. Reads the store only; knows nothing of
HTTP, channels' wire formats or how the report is printed (``format_text`` and ``csv_rows`` are
plain shapes of the same dictionary).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pymongo.asynchronous.database import AsyncDatabase

from quality.metrics import NONE_KEY, QualityFilter, quality_report
from quality.refunds import refund_report
from store.mongo import stored_datetime

RATE_METRICS = ("self_service_completion", "transfer_to_human")
TIME_METRICS = ("first_response_time", "handoff_resolution_time")
NO_INTENT = "(none)"
"""Key of messages the NLU did not label (attachments only, the NLU down, an agent's conversation)."""
TOP_ERRORS = 5


def day_range(first: date, last: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """``[first 00:00, last+1 00:00)`` in the shop's time zone, as UTC."""
    if first > last:
        raise ValueError("--from must not be after --to")
    start = datetime.combine(first, time(), zone).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), time(), zone).astimezone(UTC)
    return start, end


class _Volume:
    def __init__(self) -> None:
        self.messages = 0
        self.conversations: set[str] = set()
        self.customers: set[str] = set()

    def add(self, doc: dict[str, Any]) -> None:
        self.messages += 1
        if doc.get("conversation_id"):
            self.conversations.add(str(doc["conversation_id"]))
        if doc.get("customer_id"):
            self.customers.add(str(doc["customer_id"]))

    def view(self) -> dict[str, int]:
        return {"messages": self.messages, "conversations": len(self.conversations), "customers": len(self.customers)}


def _rates(metrics: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {name: metrics[name] for name in (*RATE_METRICS, *TIME_METRICS)}


async def _volumes(db: AsyncDatabase[dict[str, Any]], start: datetime, end: datetime, zone: ZoneInfo) -> dict[str, Any]:
    total = _Volume()
    channels: dict[str, _Volume] = defaultdict(_Volume)
    intents: dict[str, _Volume] = defaultdict(_Volume)
    hours: Counter[str] = Counter()
    cursor = db["messages"].find(
        {"direction": "in", "created_at": {"$gte": start, "$lt": end}},
        {"_id": 0, "conversation_id": 1, "customer_id": 1, "channel": 1, "created_at": 1, "understanding": 1},
    )
    async for doc in cursor:
        at = stored_datetime(doc.get("created_at"))
        if at is None or not start <= at < end:
            continue
        understood = doc.get("understanding") or {}
        intent = understood.get("intent") if isinstance(understood, dict) else None
        total.add(doc)
        channels[str(doc.get("channel") or NONE_KEY)].add(doc)
        intents[str(intent) if intent else NO_INTENT].add(doc)
        hours[at.astimezone(zone).strftime("%Y-%m-%d %H:00")] += 1
    return {
        "total": total.view(),
        "by_channel": {k: v.view() for k, v in sorted(channels.items())},
        "by_intent": {k: v.view() for k, v in sorted(intents.items(), key=lambda kv: (-kv[1].messages, kv[0]))},
        "hourly": [{"hour": hour, "messages": count} for hour, count in sorted(hours.items())],
    }


async def _delivery_failures(db: AsyncDatabase[dict[str, Any]], start: datetime, end: datetime) -> dict[str, Any]:
    by_channel: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    cursor = db["events"].find(
        {"name": "delivery_failed", "at": {"$gte": start, "$lt": end}}, {"_id": 0, "channel": 1, "data": 1}
    )
    async for doc in cursor:
        by_channel[str(doc.get("channel") or NONE_KEY)] += 1
        errors[str((doc.get("data") or {}).get("error") or "")[:120]] += 1
    return {
        "total": sum(by_channel.values()),
        "by_channel": dict(sorted(by_channel.items())),
        "top_errors": [{"error": e, "count": n} for e, n in errors.most_common(TOP_ERRORS)],
    }


async def peak_report(
    db: AsyncDatabase[dict[str, Any]], first: date, last: date, zone: ZoneInfo, *, now: datetime | None = None
) -> dict[str, Any]:
    """The whole report as one JSON-ready dictionary (its shape is in docs/quality.md, "Post-peak report")."""
    start, end = day_range(first, last, zone)
    quality = await quality_report(db, QualityFilter(start, end), zone, now=now)
    refunds = await refund_report(db, start, end, zone)
    refunds.pop("requests")  # the report is about totals; the console lists the requests
    return {
        "from": first.isoformat(),
        "to": last.isoformat(),
        "start": start.isoformat(),
        "end": end.isoformat(),
        "timezone": zone.key,
        "volumes": await _volumes(db, start, end, zone),
        "service": {
            "overall": _rates(quality.overall()),
            "by_channel": {row["key"]: _rates(row["metrics"]) for row in quality.grouped("channel")},
            "by_intent": {row["key"] or NO_INTENT: _rates(row["metrics"]) for row in quality.grouped("intent")},
        },
        "refunds": refunds,
        "delivery_failures": await _delivery_failures(db, start, end),
    }


def _percent(figure: dict[str, Any]) -> str:
    if figure["value"] is None:
        return "—"
    return f"{100 * figure['value']:.1f} % ({figure['numerator']}/{figure['denominator']})"


def _seconds(figure: dict[str, Any]) -> str:
    if figure["value"] is None:
        return "—"
    return f"median {figure['value']:.0f} s, p90 {figure['p90']:.0f} s (n={figure['denominator']})"


def format_text(report: dict[str, Any]) -> str:
    """The report for a terminal."""
    volumes, service = report["volumes"], report["service"]
    lines = [f"Peak report {report['from']} – {report['to']} ({report['timezone']})", ""]
    total = volumes["total"]
    lines.append(
        f"Volume: {total['messages']} customer messages, {total['conversations']} conversations, "
        f"{total['customers']} customers"
    )
    lines.append(f"  {'channel':<12} {'messages':>9} {'convs':>7} {'customers':>9}")
    for key, row in volumes["by_channel"].items():
        lines.append(f"  {key:<12} {row['messages']:>9} {row['conversations']:>7} {row['customers']:>9}")
    lines.append(f"  {'intent':<18} {'messages':>9} {'convs':>7} {'customers':>9}")
    for key, row in volumes["by_intent"].items():
        lines.append(f"  {key:<18} {row['messages']:>9} {row['conversations']:>7} {row['customers']:>9}")
    busiest = max(volumes["hourly"], key=lambda h: h["messages"], default=None)
    lines.append("Hourly messages" + (f" (busiest {busiest['hour']}: {busiest['messages']})" if busiest else ""))
    for hour in volumes["hourly"]:
        lines.append(f"  {hour['hour']}  {hour['messages']:>7}")
    lines.append("")
    overall = service["overall"]
    lines.append(f"Self-service completion: {_percent(overall['self_service_completion'])}")
    lines.append(f"Transfer to a human:     {_percent(overall['transfer_to_human'])}")
    lines.append(f"First agent response:    {_seconds(overall['first_response_time'])}")
    lines.append(f"Hand-off resolution:     {_seconds(overall['handoff_resolution_time'])}")
    for title, rows in (("channel", service["by_channel"]), ("intent", service["by_intent"])):
        lines.append(f"  by {title:<16} {'self-service':>22} {'to a human':>22}")
        for key, row in rows.items():
            if row["self_service_completion"]["denominator"] == 0 and row["transfer_to_human"]["denominator"] == 0:
                continue
            lines.append(
                f"  {key:<19} {_percent(row['self_service_completion']):>22} {_percent(row['transfer_to_human']):>22}"
            )
    lines.append("")
    refunds = report["refunds"]["total"]
    lines.append(
        f"Refunds: {refunds['count']} requests, ¥{refunds['amount']:.2f} "
        f"({refunds['automatic']} decided automatically, {refunds['completed']} completed, "
        f"{refunds['rejected']} rejected or cancelled)"
    )
    for row in report["refunds"]["reasons"]:
        lines.append(f"  {row['reason'] or '(no reason)':<20} {row['count']:>5}  ¥{row['amount']:.2f}")
    for row in report["refunds"]["types"]:
        lines.append(f"  type {row['type']:<15} {row['count']:>5}  ¥{row['amount']:.2f}")
    failures = report["delivery_failures"]
    lines.append("")
    lines.append(
        f"Delivery failures: {failures['total']}"
        + (" (" + ", ".join(f"{k} {v}" for k, v in failures["by_channel"].items()) + ")" if failures["total"] else "")
    )
    for row in failures["top_errors"]:
        lines.append(f"  {row['count']:>5}  {row['error']}")
    return "\n".join(lines)


def csv_rows(report: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(section, key, field, value) rows: every figure of the report, one per row."""
    rows: list[tuple[str, str, str, str]] = []
    volumes = report["volumes"]
    for name, value in volumes["total"].items():
        rows.append(("volume", "total", name, str(value)))
    for section in ("by_channel", "by_intent"):
        for key, figures in volumes[section].items():
            rows += [(f"volume_{section}", key, name, str(value)) for name, value in figures.items()]
    rows += [("volume_hourly", h["hour"], "messages", str(h["messages"])) for h in volumes["hourly"]]
    service = report["service"]
    groups = [("service", "overall", service["overall"])]
    groups += [("service_by_channel", k, v) for k, v in service["by_channel"].items()]
    groups += [("service_by_intent", k, v) for k, v in service["by_intent"].items()]
    for section, key, metrics in groups:
        for metric, figure in metrics.items():
            for name in ("value", "numerator", "denominator", "p90"):
                if name in figure:
                    value = figure[name]
                    rows.append((section, key, f"{metric}.{name}", "" if value is None else str(value)))
    refunds = report["refunds"]
    rows += [("refunds", "total", name, str(value)) for name, value in refunds["total"].items()]
    for row in refunds["reasons"]:
        rows += [("refunds_by_reason", row["reason"], k, str(v)) for k, v in row.items() if k != "reason"]
    for row in refunds["types"]:
        rows += [("refunds_by_type", row["type"], k, str(v)) for k, v in row.items() if k != "type"]
    rows += [("refunds_by_status", status, "count", str(n)) for status, n in refunds["statuses"].items()]
    failures = report["delivery_failures"]
    rows.append(("delivery_failures", "total", "count", str(failures["total"])))
    rows += [("delivery_failures_by_channel", k, "count", str(v)) for k, v in failures["by_channel"].items()]
    return rows
