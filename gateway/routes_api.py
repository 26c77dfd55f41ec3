"""HTTP API and console page of return pick-up route planning (``backoffice/routing``).

Solves run in a one-worker process pool, one at a time, so the event loop keeps serving the
channels while OR-Tools or PyVRP search. The fleet file comes from ``ROUTES_FLEET_FILE``
(default: the demo fleet shipped with the package). Every route needs a signed-in dispatcher
or admin (``gateway.staff_auth``): the plans carry customers' addresses.
"""

from __future__ import annotations

import asyncio
import html
import multiprocessing
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from backoffice.permissions import Permission
from backoffice.routing.backend import BACKENDS
from backoffice.routing.fleet import CLOCK, Fleet, FleetError, GeoPoint, Objective, load_fleet
from backoffice.routing.pickups import DATE, Pickup, PickupRequest, PickupStore
from backoffice.routing.planner import PlanningError, RoutePlanner, SolverRunner, process_solver
from channels.base import json_response
from channels.operations import TEXT, Operation, Param, Reply, Schema, json_body, route
from errors import Conflict, NotFound, OperationalError, Unauthorized, UserError
from gateway.console_web import SECURITY_HEADERS
from gateway.openapi import MAX_BODY, STAFF, read_json_object
from gateway.runtime import Gateway
from gateway.staff_auth import Handler as StaffHandler
from gateway.staff_auth import StaffAuth
from gateway.starting import wired

MAX_TIME_LIMIT_SECONDS = 120.0
ROUTES_PERMISSIONS = (Permission.ASSIGN, Permission.CONFIGURE)
"""Dispatchers (who assign the work) and admins."""
M = TypeVar("M", bound=BaseModel)
DATE_QUERY = Param("date", {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"})
PNG = Reply(media_type="image/png", schema=TEXT)


class PlanRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    date: str | None = Field(default=None, pattern=DATE)
    time_limit: float = Field(default=10.0, gt=0, le=MAX_TIME_LIMIT_SECONDS)
    backend: str | None = Field(default=None, pattern="^(" + "|".join(BACKENDS) + ")$")
    objective: Objective | None = None


class ReplanRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    now: str = Field(pattern=CLOCK)
    add: list[str] = Field(default_factory=list)
    cancel: list[str] = Field(default_factory=list)
    delays_minutes: dict[str, float] = Field(default_factory=dict)
    positions: dict[str, GeoPoint] = Field(default_factory=dict)
    time_limit: float = Field(default=10.0, gt=0, le=MAX_TIME_LIMIT_SECONDS)
    backend: str | None = Field(default=None, pattern="^(" + "|".join(BACKENDS) + ")$")


class ActualRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    vehicle_id: str
    distance_km: float = Field(ge=0)
    fuel_used_l: float | None = Field(default=None, ge=0)
    kwh: float | None = Field(default=None, ge=0)
    route: list[str] | None = None


class RoutesApi:
    def __init__(
        self, gateway: Gateway, auth: StaffAuth, fleet: Fleet | None = None, solver: SolverRunner | None = None
    ) -> None:
        self.gateway = gateway
        self.auth = auth
        self._fleet = fleet
        self._solver = solver
        self._executor: ProcessPoolExecutor | None = None
        self._planner: RoutePlanner | None = None
        self._solving = asyncio.Lock()

    def routes(self) -> list[web.RouteDef]:
        def staff(
            method: str,
            path: str,
            handler: StaffHandler,
            summary: str,
            body: Schema | None = None,
            *,
            replies: tuple[Reply, ...] = (Reply(),),
            params: tuple[Param, ...] = (),
            operation_id: str | None = None,
        ) -> web.RouteDef:
            operation = Operation(
                method, path, summary, "routes", body=json_body(body, MAX_BODY) if body else None, params=params,
                replies=replies, errors=(400, 401, 403, 404, 409, 503), security=(STAFF,), operation_id=operation_id,
            )  # fmt: skip
            return route(operation, self.auth.guard(handler, "route planning", *ROUTES_PERMISSIONS))

        plan, created = "/api/routes/plans/{plan_id}", (Reply(201),)
        return [
            staff("GET", "/api/routes/plans/latest", self.latest, "The latest plan (of a day)", params=(DATE_QUERY,)),
            staff("GET", f"{plan}.png", self.image, "The plan's map", replies=(PNG,),  # before the catch-all
                  operation_id="get_api_routes_plans_plan_id_png"),  # as first published
            staff("GET", plan, self.get_plan, "A plan"),
            staff("POST", "/api/routes/plan", self.plan, "Plan a day's pick-ups", PlanRequest, replies=created),
            staff("POST", f"{plan}/replan", self.replan, "Replan during the day", ReplanRequest, replies=created),
            staff("POST", f"{plan}/actuals", self.actual, "A vehicle's actual distance and energy", ActualRequest,
                  replies=created),
            staff("GET", "/api/routes/carbon", self.carbon, "Planned against actual CO2 of a day",
                  params=(DATE_QUERY,)),
            # 201 for a new pick-up, 200 for the same pickup_id again.
            staff("POST", "/api/routes/pickups", self.request_pickup, "A pick-up request (idempotent by pickup_id)",
                  PickupRequest, replies=(Reply(201), Reply(200))),
            route(Operation("GET", "/console/routes", "The route planning page", "console", published=False),
                  self.console),
        ]  # fmt: skip

    async def close(self, _: web.Application | None = None) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    async def planner(self) -> RoutePlanner:
        store = wired(self.gateway.store)
        if self._planner is None or self._planner.store.pickups.database is not store.db:
            try:
                fleet = self._fleet or load_fleet(self.gateway.settings.backoffice.fleet_file)
            except FleetError as exc:
                raise OperationalError(f"the fleet file cannot be used: {exc}", code="fleet_file") from exc
            solver = self._solver or process_solver(self._pool())
            self._planner = RoutePlanner(PickupStore(store.db), fleet, self.gateway.settings.var_dir, solver)
            await self._planner.ensure_indexes()
        return self._planner

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            # spawn, not fork: the gateway process has threads (pymongo) that fork would copy mid-state.
            self._executor = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        return self._executor

    # -- handlers ------------------------------------------------------------------------------

    async def latest(self, request: web.Request) -> web.Response:
        planner = await self.planner()
        plan = await planner.store.latest_plan(request.query.get("date"))
        if plan is None:
            raise NotFound("no plan yet")
        return json_response(plan)

    async def get_plan(self, request: web.Request) -> web.Response:
        return json_response(await self._plan(request))

    async def image(self, request: web.Request) -> web.FileResponse:
        planner = await self.planner()
        return web.FileResponse(await planner.png(await self._plan(request)), headers={"Content-Type": "image/png"})

    async def plan(self, request: web.Request) -> web.Response:
        body = await _body(request, PlanRequest)
        planner = await self.planner()
        async with self._solving:
            try:
                plan = await planner.plan_day(
                    body.date or planner.tomorrow(),
                    backend=body.backend,
                    time_limit=body.time_limit,
                    objective=body.objective,
                )
            except PlanningError as exc:
                raise Conflict(str(exc), code="planning_failed") from exc
        return json_response(plan, status=201)

    async def replan(self, request: web.Request) -> web.Response:
        body = await _body(request, ReplanRequest)
        planner = await self.planner()
        async with self._solving:
            try:
                plan = await planner.replan(
                    request.match_info["plan_id"],
                    now=body.now,
                    add=body.add,
                    cancel=body.cancel,
                    delays_minutes=body.delays_minutes,
                    positions=body.positions,
                    backend=body.backend,
                    time_limit=body.time_limit,
                )
            except PlanningError as exc:
                raise Conflict(str(exc), code="planning_failed") from exc
        return json_response(plan, status=201)

    async def actual(self, request: web.Request) -> web.Response:
        body = await _body(request, ActualRequest)
        if body.fuel_used_l is not None and body.kwh is not None:
            raise UserError("give fuel_used_l or kwh, not both", code="invalid_payload")
        planner = await self.planner()
        try:
            record = await planner.record_actual(
                request.match_info["plan_id"],
                body.vehicle_id,
                distance_km=body.distance_km,
                energy=body.fuel_used_l if body.fuel_used_l is not None else body.kwh,
                route=body.route,
            )
        except PlanningError as exc:
            raise NotFound(str(exc)) from exc
        return json_response(record, status=201)

    async def carbon(self, request: web.Request) -> web.Response:
        planner = await self.planner()
        date = request.query.get("date") or planner.tomorrow()
        return json_response(await planner.carbon_report(date))

    async def request_pickup(self, request: web.Request) -> web.Response:
        body = await _body(request, PickupRequest)
        planner = await self.planner()
        pickup, created = await planner.store.request_pickup(body)
        return json_response(pickup.model_dump(mode="json"), status=201 if created else 200)

    async def console(self, request: web.Request) -> web.StreamResponse:
        try:
            await self.auth.require(request, "the route planning page", *ROUTES_PERMISSIONS)
        except Unauthorized:  # a browser without a session: sign in, then come back
            raise web.HTTPSeeOther("/console/login?next=/console/routes") from None
        planner = await self.planner()
        plan = await planner.store.latest_plan(request.query.get("date"))
        day = request.query.get("date") or (plan["date"] if plan else planner.tomorrow())
        pickups = [p.model_dump(mode="json") async for p in _of_day(planner.store, day)]
        page = web.Response(text=_console_page(plan, pickups, day), content_type="text/html", charset="utf-8")
        page.headers.update(SECURITY_HEADERS)  # the console's: no framing, no inline script, no caching
        return page

    async def _plan(self, request: web.Request) -> dict[str, Any]:
        planner = await self.planner()
        plan = await planner.store.get_plan(request.match_info["plan_id"])
        if plan is None:
            raise NotFound(f"no plan {request.match_info['plan_id']}")
        return plan


async def _body(request: web.Request, model: type[M]) -> M:
    data = await read_json_object(request)  # invalid_json, invalid_payload (not an object), too_large
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise UserError(f"{where}: {first['msg']}" if where else first["msg"], code="invalid_payload") from exc


async def _of_day(store: PickupStore, day: str) -> AsyncIterator[Pickup]:
    """The day's pick-ups, and those a failed visit on that day moved to another day."""
    seen: set[str] = set()
    # $elemMatch rather than "attempts.date": the embedded store does not reach into arrays by a dotted path
    for query in ({"date": day}, {"attempts": {"$elemMatch": {"date": day}}}):
        async for doc in store.pickups.find(query).sort("_id", 1):
            if doc["_id"] not in seen:
                seen.add(doc["_id"])
                pickup = await store.get(str(doc["_id"]))
                if pickup is not None:
                    yield pickup


STATUS_LABELS = {"requested": "待排线", "planned": "已排线", "picked_up": "已取件", "failed": "取件失败",
                 "cancelled": "已取消"}  # fmt: skip


def _stop_state(pickup: dict[str, Any], plan: dict[str, Any] | None) -> str:
    """What the courier reported for this stop on this plan (a failed visit stays failed here)."""
    if plan is not None and pickup.get("plan_id") != plan.get("_id"):
        failed = [a for a in pickup.get("attempts", []) if a.get("plan_id") == plan.get("_id")]
        if failed:
            return f"取件失败：{failed[-1].get('reason', '')}（改约 {pickup['date']}）"
    return STATUS_LABELS.get(str(pickup.get("status")), str(pickup.get("status")))


def _pickups_table(pickups: list[dict[str, Any]], plan: dict[str, Any] | None) -> str:
    """Every pick-up of the day — the bot's bookings among them — where it is and how precisely, and its state."""
    if not pickups:
        return "<p>No pick-ups booked for this day.</p>"
    on_route = {s["pickup_id"]: r["vehicle_id"] for r in (plan or {}).get("routes", []) for s in r["stops"]}
    rows = ""
    for p in pickups:
        location = p.get("location")
        where = f"{location['lat']:.4f}, {location['lon']:.4f}" if location else "—"
        courier = (p.get("courier") or {}).get("assigned") or ""
        cells = (
            p["pickup_id"], p["order_id"], p["kind"], p["address"], where,
            p.get("location_precision") or ("given" if location else "not geocoded"), p.get("location_region") or "",
            f"{p['date']} {p['window_start']}-{p['window_end']}", on_route.get(p["pickup_id"], "—"),
            _stop_state(p, plan), courier, p.get("tracking_number") or "",
        )  # fmt: skip
        rows += "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>"
    head = "".join(
        f"<th>{h}</th>"
        for h in ("pick-up", "order", "kind", "address", "lat, lon", "precision", "region", "window", "vehicle",
                  "state", "courier", "waybill")
    )  # fmt: skip
    return f"<h2>Pick-ups</h2><table border=1 cellpadding=4><tr>{head}</tr>{rows}</table>"


def _console_page(plan: dict[str, Any] | None, pickups: list[dict[str, Any]] | None = None, day: str = "") -> str:
    if plan is None:
        body = "<p>No plan yet. Run <code>python run.py routes plan</code> or POST /api/routes/plan.</p>"
    else:
        rows = "".join(
            "<tr>"
            + "".join(
                f"<td>{html.escape(str(v))}</td>"
                for v in (
                    r["vehicle_id"],
                    r["vehicle_type"],
                    r["depot_id"],
                    f"{r['depart']}-{r['return']}",
                    len(r["stops"]),
                    f"{r['distance_km']:.1f}",
                    f"{r['max_load']['parcels']} / {r['max_load']['weight_kg']:.0f} kg / {r['max_load']['volume_l']} l",
                    f"{r['co2_kg']:.2f}",
                )
            )
            + "</tr>"
            for r in plan["routes"]
        )
        unserved = "".join(
            f"<li>{html.escape(u['pickup_id'])}: {html.escape(u['reason'])}</li>" for u in plan["unserved"]
        )
        totals = plan["totals"]
        body = (
            f"<p>Plan {html.escape(plan['_id'])} for {html.escape(plan['date'])}, revision {plan['revision']}, "
            f"{html.escape(plan['backend'])}: {totals['stops']} stops, {totals['distance_km']:.1f} km, "
            f"{totals['co2_kg']:.1f} kg CO2, {totals['cost_yuan']:.0f} yuan.</p>"
            "<table border=1 cellpadding=4><tr><th>vehicle</th><th>type</th><th>depot</th><th>time</th>"
            "<th>stops</th><th>km</th><th>max load</th><th>kg CO2</th></tr>"
            f"{rows}</table>"
            f"<ul>{unserved}</ul>"
            f'<img class="route-map" src="/api/routes/plans/{html.escape(plan["_id"])}.png" alt="route map">'
        )
    head = (
        '<!doctype html><html lang="zh"><meta charset="utf-8"><title>Pick-up routes</title>'
        '<link rel="stylesheet" href="/console/assets/console.css">'
    )
    table = _pickups_table(pickups or [], plan)
    return f"{head}<h1>Pick-up routes {html.escape(day)}</h1>{body}{table}</html>"
