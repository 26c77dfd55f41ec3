"""The quality team's HTTP API (``/api/console/quality/…``, ``/api/console/refunds/…``,
``/api/console/reviews…``): the dashboard's figures with their definitions, the conversations
behind a figure, CSV exports, the refund report and the review queue.

Staff sign in as for every staff route (``gateway.staff_auth``: bearer token or console session
plus CSRF header). ``view_quality`` opens the dashboard, the report and the exports;
``score_quality`` scores reviews. Every query parameter is checked: a bad one is a 400 naming it.
Figures come from ``quality``; this module only parses, checks and shapes.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Literal, cast
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

import textpatterns
from backoffice.classify import CATEGORY_LABELS
from backoffice.permissions import Permission
from backoffice.staff import StaffMember
from channels.base import json_response
from channels.operations import Operation, Param, Reply, Schema, route
from errors import UserError
from gateway.openapi import STAFF, read_body
from gateway.staff_auth import StaffAuth
from quality.analytics import ivr_report, knowledge_misses, problems_report, refund_records
from quality.metrics import DIMENSIONS, METRIC_BY_NAME, METRICS, QualityFilter, QualityReport, quality_report
from quality.refunds import Granularity, refund_report
from quality.reviews import KINDS, ReviewQueue, Window

if TYPE_CHECKING:
    from gateway.runtime import Gateway

PREFIX = "/api/console"
MAX_DAYS = 366
DEFAULT_DAYS = 30
DRILL_ROWS = 500
NAME = textpatterns.compile(r"^[a-z][a-z0-9_]{0,63}$")
AGENT = textpatterns.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
BOM = "\ufeff"
P = Permission

Q_FROM = Param("from", {"type": "string", "format": "date"}, "first day (shop time zone); default 29 days ago")
Q_TO = Param("to", {"type": "string", "format": "date"}, "last day, inclusive; default today; at most 366 days")
Q_CHANNEL = Param("channel", {"type": "string", "pattern": NAME.pattern}, "only this channel")
Q_INTENT = Param("intent", {"type": "string", "pattern": NAME.pattern}, "only this intent")
Q_AGENT = Param("agent", {"type": "string", "pattern": AGENT.pattern}, "only this agent")
Q_GRANULARITY = Param("granularity", {"type": "string", "enum": ["day", "week"]}, "periods: day or week")
Q_LANG = Param("lang", {"type": "string", "enum": ["zh", "en"]}, "labels and definitions in zh or en")
FILTERS = (Q_FROM, Q_TO, Q_CHANNEL, Q_INTENT, Q_AGENT, Q_LANG)
ORDER_ID = textpatterns.compile(r"^[0-9]{4,24}$")
REQUEST_ID = textpatterns.compile(r"^[A-Z]{1,4}[0-9]{6,24}$")
REQUEST_STATUSES = ("applied", "reviewing", "approved", "rejected", "awaiting_return", "goods_received",
                    "payment_processing", "resending", "issuing", "completed", "cancelled")  # fmt: skip
Q_ORDER = Param("order_id", {"type": "string", "pattern": ORDER_ID.pattern}, "only this order")
Q_REQUEST = Param("request_id", {"type": "string", "pattern": REQUEST_ID.pattern}, "this request (any date)")
Q_STATUS = Param("status", {"type": "string", "enum": list(REQUEST_STATUSES)}, "only requests in this status")
RECORD_FILTERS = (Q_FROM, Q_TO, Q_ORDER, Q_REQUEST, Q_STATUS)


class Score(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item_id: str = Field(min_length=5, max_length=128, description="bot:<message id> or agent:<message id>")
    verdict: Literal["good", "bad", "correct", "incorrect"]
    right_intent: str | None = Field(None, pattern=NAME.pattern, description="the intent the reviewer thinks right")
    comment: str | None = Field(None, max_length=1000)


def _language(request: web.Request, member: StaffMember) -> str:
    value = request.query.get("lang") or member.language or "zh"
    if value not in ("zh", "en"):
        raise UserError("lang must be zh or en", code="invalid_field", field="lang")
    return value


def _day(request: web.Request, name: str, default: date) -> date:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise UserError(f"{name} must be an ISO date such as 2026-11-30", code="invalid_field", field=name) from None


def _name(request: web.Request, name: str, pattern: textpatterns.Pattern = NAME) -> str | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    if not pattern.match(raw):
        raise UserError(f"{name} must match {pattern.pattern}", code="invalid_field", field=name)
    return raw


class QualityApi:
    def __init__(self, gateway: Gateway, auth: StaffAuth) -> None:
        self.gateway = gateway
        self.auth = auth
        self._routes: list[web.RouteDef] = []
        self._register()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.gateway.settings.shop.timezone)

    def routes(self) -> list[web.RouteDef]:
        return list(self._routes)

    def _register(self) -> None:
        add = self._op
        add(
            "GET",
            "/quality/summary",
            self.summary,
            "Quality figures with definitions, grouped",
            P.VIEW_QUALITY,
            query=FILTERS,
        )
        add(
            "GET",
            "/quality/conversations",
            self.conversations,
            "The conversations behind a figure",
            P.VIEW_QUALITY,
            query=(
                Param("metric", {"type": "string", "enum": [m.name for m in METRICS]}, "the figure", True),
                Param("group", {"type": "string", "enum": list(DIMENSIONS)}, "channel, intent, day, hour, agent"),
                Param("key", {"type": "string", "maxLength": 64}, "the group's key (with group)"),
                *FILTERS,
            ),
        )
        add(
            "GET",
            "/quality/export.csv",
            self.export,
            "Every figure per group as CSV (UTF-8 with BOM)",
            P.VIEW_QUALITY,
            query=FILTERS,
            success_type="text/csv",
        )
        add(
            "GET",
            "/refunds/report",
            self.refunds,
            "Refund counts, amounts and reasons over time",
            P.VIEW_QUALITY,
            query=(Q_FROM, Q_TO, Q_GRANULARITY),
        )
        add(
            "GET",
            "/refunds/export.csv",
            self.refunds_csv,
            "The refund report as CSV (UTF-8 with BOM)",
            P.VIEW_QUALITY,
            query=(Q_FROM, Q_TO, Q_GRANULARITY),
            success_type="text/csv",
        )
        add("GET", "/quality/problems", self.problems, "Tickets by category and by SKU, with the repeat-defect flag",
            P.VIEW_QUALITY, query=(Q_FROM, Q_TO, Q_LANG))  # fmt: skip
        add("GET", "/quality/problems.csv", self.problems_csv, "Tickets by category and by SKU as CSV", P.VIEW_QUALITY,
            query=(Q_FROM, Q_TO, Q_LANG), success_type="text/csv")  # fmt: skip
        add("GET", "/quality/knowledge-misses", self.misses, "Questions the knowledge base missed, clustered",
            P.VIEW_QUALITY, query=(Q_FROM, Q_TO))  # fmt: skip
        add("GET", "/quality/ivr", self.ivr, "IVR handling time per scenario and nuisance calls", P.VIEW_QUALITY,
            query=(Q_FROM, Q_TO))  # fmt: skip
        add("GET", "/refunds/records", self.records, "Refund records by order, request, status and date",
            P.VIEW_QUALITY, query=RECORD_FILTERS)  # fmt: skip
        add("GET", "/refunds/records.csv", self.records_csv, "Refund records as CSV (UTF-8 with BOM)", P.VIEW_QUALITY,
            query=RECORD_FILTERS, success_type="text/csv")  # fmt: skip
        add(
            "GET",
            "/reviews/queue",
            self.review_queue,
            "Items the caller has not scored yet",
            P.SCORE_QUALITY,
            query=(
                Param("kind", {"type": "string", "enum": list(KINDS)}, "bot_answer or agent_correction"),
                Q_FROM,
                Q_TO,
                Param("limit", {"type": "integer", "minimum": 1, "maximum": 50}),
            ),
        )
        add("POST", "/reviews", self.score, "Score a bot answer or an agent's correction", P.SCORE_QUALITY,
            body=Score, success=201)  # fmt: skip

    def _op(
        self,
        method: str,
        path: str,
        handler: Callable[[web.Request, StaffMember], Awaitable[web.StreamResponse]],
        summary: str,
        permission: Permission,
        *,
        query: tuple[Param, ...] = (),
        body: Schema | None = None,
        success: int = 200,
        success_type: str = "application/json",
    ) -> None:
        """Declare ``METHOD /api/console<path>`` for staff with ``permission``."""

        async def serve(request: web.Request) -> web.StreamResponse:
            member = (await self.auth.caller(request)).member
            member.actor().require(permission, summary.lower())
            return await handler(request, member)

        operation = Operation(
            method, f"{PREFIX}{path}", summary, "quality", body=body, params=query,
            replies=(Reply(success, success_type),), errors=(400, 401, 403), security=(STAFF,),
        )  # fmt: skip
        self._routes.append(route(operation, serve))

    # -- parameters ---------------------------------------------------------------------------

    def _range(self, request: web.Request) -> tuple[date, date, datetime, datetime]:
        today = datetime.now(self.zone).date()
        last = _day(request, "to", today)
        first = _day(request, "from", last - timedelta(days=DEFAULT_DAYS - 1))
        if first > last:
            raise UserError("from must not be after to", code="invalid_range", field="from")
        if (last - first).days + 1 > MAX_DAYS:
            raise UserError(f"the range is at most {MAX_DAYS} days", code="invalid_range", field="to")
        start = datetime.combine(first, time(), self.zone).astimezone(UTC)
        end = datetime.combine(last + timedelta(days=1), time(), self.zone).astimezone(UTC)
        return first, last, start, end

    async def _report(self, request: web.Request) -> tuple[QualityReport, dict[str, Any]]:
        first, last, start, end = self._range(request)
        where = QualityFilter(
            start, end, channel=_name(request, "channel"), intent=_name(request, "intent"),
            agent=_name(request, "agent", AGENT),
        )  # fmt: skip
        assert self.gateway.store is not None
        report = await quality_report(self.gateway.store.db, where, self.zone)
        described = {
            "from": first.isoformat(), "to": last.isoformat(), "start": start.isoformat(), "end": end.isoformat(),
            "timezone": self.gateway.settings.shop.timezone,
            "filters": {"channel": where.channel, "intent": where.intent, "agent": where.agent},
        }  # fmt: skip
        return report, described

    # -- the dashboard ------------------------------------------------------------------------

    async def summary(self, request: web.Request, member: StaffMember) -> web.Response:
        language = _language(request, member)
        report, described = await self._report(request)
        overall = report.overall()
        metrics = [
            {"name": m.name, "kind": m.kind, "label": m.label[language], "definition": m.definition[language],
             "better": m.better, **overall[m.name]}
            for m in METRICS
        ]  # fmt: skip
        groups = {dimension: report.grouped(dimension) for dimension in DIMENSIONS}
        return json_response({**described, "language": language, "metrics": metrics, "groups": groups})

    async def conversations(self, request: web.Request, member: StaffMember) -> web.Response:
        metric = request.query.get("metric", "")
        if metric not in METRIC_BY_NAME:
            raise UserError(f"metric must be one of {', '.join(METRIC_BY_NAME)}", code="invalid_field", field="metric")
        group = request.query.get("group") or None
        if group is not None and group not in DIMENSIONS:
            raise UserError(f"group must be one of {', '.join(DIMENSIONS)}", code="invalid_field", field="group")
        key = request.query.get("key")
        if group is not None and (key is None or len(key) > 64):
            raise UserError("key (at most 64 characters) is required with group", code="invalid_field", field="key")
        report, described = await self._report(request)
        behind = report.behind(metric, group, key)
        can_open = member.actor().has(P.HANDLE_CONVERSATIONS)
        rows = [
            {
                "unit": unit.id, "source": unit.source, "conversation_id": unit.conversation_id,
                "channel": unit.channel, "customer_id": unit.customer_id, "started": unit.at.isoformat(),
                "intent": unit.intent, "agent": unit.agent, "outcome": unit.outcome, "in_numerator": counted,
                "link": f"/console/conversations/{unit.conversation_id}" if can_open and unit.conversation_id else None,
            }
            for unit, counted in sorted(behind, key=lambda pair: pair[0].at, reverse=True)[:DRILL_ROWS]
        ]  # fmt: skip
        return json_response(
            {**described, "metric": metric, "group": group, "key": key, "total": len(behind), "rows": rows}
        )

    async def export(self, request: web.Request, member: StaffMember) -> web.StreamResponse:
        language = _language(request, member)
        report, described = await self._report(request)
        out = io.StringIO()
        writer = _SafeWriter(out)
        writer.writerow(["dimension", "key", "metric", "label", "numerator", "denominator", "value", "p90", "mean",
                         "definition"])  # fmt: skip
        rows: list[tuple[str, str, dict[str, dict[str, Any]]]] = [("all", "", report.overall())]
        for dimension in DIMENSIONS:
            rows += [(dimension, g["key"], g["metrics"]) for g in report.grouped(dimension)]
        for dimension, key, figures in rows:
            for m in METRICS:
                f = figures[m.name]
                writer.writerow([dimension, key, m.name, m.label[language], _cell(f.get("numerator")),
                                 f["denominator"], _cell(f.get("value")), _cell(f.get("p90")), _cell(f.get("mean")),
                                 m.definition[language]])  # fmt: skip
        return _csv(out.getvalue(), f"quality-{described['from']}-{described['to']}.csv")

    # -- refunds ------------------------------------------------------------------------------

    async def _refunds(self, request: web.Request) -> dict[str, Any]:
        first, last, start, end = self._range(request)
        granularity = request.query.get("granularity") or "day"
        if granularity not in ("day", "week"):
            raise UserError("granularity must be day or week", code="invalid_field", field="granularity")
        assert self.gateway.store is not None
        report = await refund_report(self.gateway.store.db, start, end, self.zone, cast(Granularity, granularity))
        return {"from": first.isoformat(), "to": last.isoformat(), "timezone": self.gateway.settings.shop.timezone,
                **report}  # fmt: skip

    async def refunds(self, request: web.Request, member: StaffMember) -> web.Response:
        return json_response(await self._refunds(request))

    async def refunds_csv(self, request: web.Request, member: StaffMember) -> web.StreamResponse:
        report = await self._refunds(request)
        out = io.StringIO()
        writer = _SafeWriter(out)
        columns = ["count", "amount", "completed", "completed_amount", "rejected", "automatic"]
        writer.writerow(["section", "key", *columns])
        for row in report["periods"]:
            writer.writerow([report["granularity"], row["period"], *(row[c] for c in columns)])
        for row in report["reasons"]:
            writer.writerow(["reason", row["reason"], *(row[c] for c in columns)])
        for row in report["types"]:
            writer.writerow(["type", row["type"], *(row[c] for c in columns)])
        writer.writerow(["total", "", *(report["total"][c] for c in columns)])
        return _csv(out.getvalue(), f"refunds-{report['from']}-{report['to']}.csv")

    # -- problems, knowledge misses, IVR, refund records -----------------------------------------

    def _described(self, first: date, last: date) -> dict[str, Any]:
        return {"from": first.isoformat(), "to": last.isoformat(), "timezone": self.gateway.settings.shop.timezone}

    async def _problems(self, request: web.Request, member: StaffMember) -> dict[str, Any]:
        language = _language(request, member)
        first, last, start, end = self._range(request)
        assert self.gateway.store is not None
        report = await problems_report(self.gateway.store.db, start, end, self.zone)
        for row in report["categories"]:
            row["label"] = CATEGORY_LABELS.get(row["category"], {}).get(language, row["category"])
        return {**self._described(first, last), "language": language, **report}

    async def problems(self, request: web.Request, member: StaffMember) -> web.Response:
        return json_response(await self._problems(request, member))

    async def problems_csv(self, request: web.Request, member: StaffMember) -> web.StreamResponse:
        report = await self._problems(request, member)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["section", "key", "label", "tickets", "open", "customers", "amount", "repeat_defect"])
        for row in report["categories"]:
            writer.writerow(["category", row["category"], row["label"], row["tickets"], row["open"], "",
                             row["amount"], ""])  # fmt: skip
        for item in report["skus"]:
            writer.writerow(["sku", item["sku"], "", item["tickets"], "", item["customers"], "",
                             "yes" if item["repeat_defect"] else "no"])  # fmt: skip
        return _csv(out.getvalue(), f"problems-{report['from']}-{report['to']}.csv")

    async def misses(self, request: web.Request, member: StaffMember) -> web.Response:
        first, last, start, end = self._range(request)
        assert self.gateway.store is not None
        report = await knowledge_misses(self.gateway.store.db, start, end, self.zone)
        return json_response({**self._described(first, last), **report})

    async def ivr(self, request: web.Request, member: StaffMember) -> web.Response:
        first, last, start, end = self._range(request)
        assert self.gateway.store is not None
        report = await ivr_report(self.gateway.store.db, start, end, self.zone)
        return json_response({**self._described(first, last), **report})

    async def _records(self, request: web.Request) -> dict[str, Any]:
        first, last, start, end = self._range(request)
        status = request.query.get("status") or None
        if status is not None and status not in REQUEST_STATUSES:
            raise UserError(
                f"status must be one of {', '.join(REQUEST_STATUSES)}", code="invalid_field", field="status"
            )
        assert self.gateway.store is not None
        found = await refund_records(
            self.gateway.store.db, start, end, self.zone, order_id=_name(request, "order_id", ORDER_ID),
            request_id=_name(request, "request_id", REQUEST_ID), status=status,
        )  # fmt: skip
        return {**self._described(first, last), **found}

    async def records(self, request: web.Request, member: StaffMember) -> web.Response:
        return json_response(await self._records(request))

    async def records_csv(self, request: web.Request, member: StaffMember) -> web.StreamResponse:
        found = await self._records(request)
        out = io.StringIO()
        writer = csv.writer(out)
        columns = ["id", "order_id", "type", "status", "amount", "reason", "channel", "created_at", "refunded_at",
                   "automatic", "ticket_id"]  # fmt: skip
        writer.writerow(columns)
        for row in found["rows"]:
            writer.writerow([_cell(row.get(c)) for c in columns])
        return _csv(out.getvalue(), f"refund-records-{found['from']}-{found['to']}.csv")

    # -- reviews ------------------------------------------------------------------------------

    def _reviews(self) -> ReviewQueue:
        assert self.gateway.reviews is not None
        return self.gateway.reviews

    async def review_queue(self, request: web.Request, member: StaffMember) -> web.Response:
        asked = request.query.get("kind") or "bot_answer"
        kind = next((k for k in KINDS if k == asked), None)
        if kind is None:
            raise UserError("kind must be bot_answer or agent_correction", code="invalid_field", field="kind")
        raw_limit = request.query.get("limit") or "10"
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 50:
            raise UserError("limit must be 1–50", code="invalid_field", field="limit")
        first, last, start, end = self._range(request)
        queue = await self._reviews().queue(kind, member.id, Window(start, end), int(raw_limit))
        return json_response({"from": first.isoformat(), "to": last.isoformat(), **queue})

    async def score(self, request: web.Request, member: StaffMember) -> web.Response:
        body = await read_body(request, Score)
        review = await self._reviews().score(
            body.item_id, member.id, body.verdict, right_intent=body.right_intent, comment=body.comment
        )
        return json_response({"review": review}, status=201)


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class _SafeWriter:
    """A CSV writer whose text cells cannot run as spreadsheet formulas: customers' words (a
    refund reason "=HYPERLINK(…)") are shown as text, a leading quote keeping them inert."""

    def __init__(self, out: io.StringIO) -> None:
        self.writer = csv.writer(out)

    def writerow(self, row: Iterable[Any]) -> None:
        self.writer.writerow(["'" + c if isinstance(c, str) and c.startswith(_FORMULA_START) else c for c in row])


def _csv(text: str, filename: str) -> web.Response:
    # The BOM makes Excel read the file as UTF-8 (Chinese labels) instead of the locale's code page.
    response = web.Response(body=(BOM + text).encode("utf-8"), content_type="text/csv", charset="utf-8")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response
