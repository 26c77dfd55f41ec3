"""Plan a day's pick-ups from the store: build the problem, solve, check, record, draw.

The planner turns open pick-ups and the fleet file into a :class:`RoutingProblem` (depots first,
then one location per pick-up, then any reported vehicle positions), solves it with the chosen
backend (falling back to OR-Tools when the backend cannot model the problem), checks the plan
with the independent checker, and only then stores it, marks the pick-ups planned, appends one
planned carbon record per route to the ledger and writes a JSON and PNG copy under ``var/routes``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bson import ObjectId

from backoffice.ledger import HashChainLedger
from backoffice.routing.backend import DEFAULT_BACKEND, backend_named
from backoffice.routing.emissions import carbon_record, compare, energy_field
from backoffice.routing.feasibility import PlanReport, check
from backoffice.routing.fleet import (
    MICROS,
    Fleet,
    GeoPoint,
    Objective,
    VehicleTypeConfig,
    clock_seconds,
    clock_text,
)
from backoffice.routing.matrices import road_matrices
from backoffice.routing.model import (
    Depot,
    Point,
    ProgressSink,
    Route,
    RoutingProblem,
    RoutingSolution,
    SolveOptions,
    SolveStats,
    Stop,
    Vehicle,
)
from backoffice.routing.pickups import Pickup, PickupStatus, PickupStore, now_iso
from backoffice.routing.replan import Changes, VehicleProgress, progress_at, remaining_problem

log = logging.getLogger(__name__)

DIMENSIONS = ("parcels", "weight_100g", "volume_l")
CARBON_CHAIN = "carbon"


class PlanningError(ValueError):
    """Nothing to plan, or a plan that cannot be made; the message says why."""


# -- the problem ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DayProblem:
    """A day's problem and what its indexes mean."""

    problem: RoutingProblem
    sites: tuple[GeoPoint, ...]
    pickups: Mapping[str, Pickup]
    vehicle_types: Mapping[str, VehicleTypeConfig]
    not_plannable: Mapping[str, str]
    """Pick-ups left out before solving, with the reason."""
    position_locations: Mapping[str, int]
    """Location index of each reported vehicle position."""


def build_day_problem(
    fleet: Fleet,
    pickups: list[Pickup],
    *,
    objective: Objective | None = None,
    positions: Mapping[str, GeoPoint] | None = None,
) -> DayProblem:
    objective = objective or fleet.objective
    assume = fleet.assumptions
    not_plannable: dict[str, str] = {}
    depot_ids = {d.id for d in fleet.depots}
    plannable: list[Pickup] = []
    for pickup in pickups:
        if pickup.location is None:
            not_plannable[pickup.pickup_id] = "address not geocoded"
        elif pickup.depot_id is not None and pickup.depot_id not in depot_ids:
            not_plannable[pickup.pickup_id] = f"unknown depot {pickup.depot_id}"
        else:
            plannable.append(pickup)

    sites: list[GeoPoint] = [d.location for d in fleet.depots]
    sites += [p.location for p in plannable if p.location is not None]
    position_index: dict[str, int] = {}
    for vehicle_id, point in (positions or {}).items():
        position_index[vehicle_id] = len(sites)
        sites.append(point)
    metres, seconds = road_matrices(
        [(s.lat, s.lon) for s in sites], detour_factor=assume.detour_factor, speed_kmh=assume.speed_kmh
    )

    depots = tuple(
        Depot(
            id=d.id,
            location=number,
            opens=clock_seconds(d.opens),
            closes=clock_seconds(d.closes),
            handling_capacity=d.handling_capacity_parcels,
        )
        for number, d in enumerate(fleet.depots)
    )
    vehicles_at = {d.id: frozenset(v.id for v in fleet.vehicles if v.depot == d.id) for d in fleet.depots}
    penalty = round(assume.unserved_penalty * MICROS)
    stops = tuple(
        _stop(pickup, len(fleet.depots) + number, assume.service_minutes, assume.service_minutes_per_parcel, penalty)
        for number, pickup in enumerate(plannable)
    )
    stops = tuple(
        replace(stop, allowed_vehicles=vehicles_at[pickup.depot_id]) if pickup.depot_id else stop
        for stop, pickup in zip(stops, plannable, strict=True)
    )

    depot_number = {d.id: n for n, d in enumerate(fleet.depots)}
    vehicle_types = {v.id: fleet.vehicle_type(v.type) for v in fleet.vehicles}
    vehicles = []
    for config in fleet.vehicles:
        kind = vehicle_types[config.id]
        vehicles.append(
            Vehicle(
                id=config.id,
                capacity=(
                    kind.capacity.parcels,
                    math.floor(kind.capacity.weight_kg * 10),
                    math.floor(kind.capacity.volume_l),
                ),
                start_location=depot_number[config.depot],
                start_depot=config.depot,
                end_depot=config.depot,
                available_from=clock_seconds(config.shift_start),
                return_by=clock_seconds(config.shift_end),
                # cost units per metre: (yuan per km) * MICROS / 1000
                distance_cost=round(objective.rate_per_km(kind) * MICROS / 1000),
                fixed_cost=round(objective.fixed(kind) * MICROS),
                max_distance=None if kind.range_km is None else math.floor(kind.range_km * 1000),
            )
        )
    origin = sites[0]
    problem = RoutingProblem(
        name="pickups",
        dimensions=DIMENSIONS,
        distance=metres,
        duration=seconds,
        points=tuple(_project(site, origin) for site in sites),
        depots=depots,
        stops=stops,
        vehicles=tuple(vehicles),
    )
    return DayProblem(
        problem=problem,
        sites=tuple(sites),
        pickups={p.pickup_id: p for p in plannable},
        vehicle_types=vehicle_types,
        not_plannable=not_plannable,
        position_locations=position_index,
    )


def _stop(pickup: Pickup, location: int, base_minutes: float, per_parcel: float, penalty: int) -> Stop:
    parcels = pickup.parcels
    exchange = pickup.exchange
    # Loads round up so that rounding never lets a vehicle be overloaded.
    pickup_load = (parcels.count, math.ceil(parcels.weight_kg * 10), math.ceil(parcels.volume_l))
    delivery_load = (
        (exchange.count, math.ceil(exchange.weight_kg * 10), math.ceil(exchange.volume_l)) if exchange else (0, 0, 0)
    )
    handled = parcels.count + (exchange.count if exchange else 0)
    return Stop(
        id=pickup.pickup_id,
        location=location,
        pickup=pickup_load,
        delivery=delivery_load,
        service_time=round((base_minutes + per_parcel * handled) * 60),
        ready=clock_seconds(pickup.window_start),
        due=clock_seconds(pickup.window_end),
        penalty=penalty,
    )


def _project(point: GeoPoint, origin: GeoPoint) -> Point:
    """Kilometres east and north of the first depot: good enough to draw a city."""
    return Point(
        x=(point.lon - origin.lon) * 111.32 * math.cos(math.radians(origin.lat)),
        y=(point.lat - origin.lat) * 110.57,
    )


# -- solving -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SolveOutcome:
    solution: RoutingSolution
    backend: str
    fallback_reason: str | None


def solve_problem(
    problem: RoutingProblem,
    backend_name: str | None,
    time_limit: float,
    seed: int = 0,
    progress: ProgressSink | None = None,
) -> SolveOutcome:
    """Solve with the named backend (default: the benchmark's choice), or with OR-Tools when that
    backend cannot model the problem. Module-level so that a process pool can run it."""
    name = backend_name or DEFAULT_BACKEND
    backend = backend_named(name)
    fallback_reason: str | None = None
    if reasons := backend.unsupported(problem):
        fallback_reason = f"{name} cannot model {', '.join(reasons)}; planned with OR-Tools"
        log.info(fallback_reason)
        backend = backend_named("ortools")
    solution = backend.solve(problem, SolveOptions(time_limit=time_limit, seed=seed, progress=progress))
    return SolveOutcome(solution, backend.name, fallback_reason)


SolverRunner = Callable[[RoutingProblem, str | None, float], Awaitable[SolveOutcome]]


def thread_solver(progress: ProgressSink | None = None) -> SolverRunner:
    """Solve in a worker thread (the CLI), reporting progress to ``progress``."""

    async def run(problem: RoutingProblem, backend_name: str | None, time_limit: float) -> SolveOutcome:
        return await asyncio.to_thread(solve_problem, problem, backend_name, time_limit, 0, progress)

    return run


def process_solver(executor: Executor) -> SolverRunner:
    """Solve in another process (the gateway): OR-Tools holds the GIL while it searches, which
    would stall every other request of the event loop for the whole time limit."""

    async def run(problem: RoutingProblem, backend_name: str | None, time_limit: float) -> SolveOutcome:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(executor, solve_problem, problem, backend_name, time_limit)

    return run


# -- the planner ---------------------------------------------------------------------------


class RoutePlanner:
    def __init__(self, store: PickupStore, fleet: Fleet, var_dir: Path, solver: SolverRunner | None = None) -> None:
        self.store = store
        self.fleet = fleet
        self.out_dir = var_dir / "routes"
        self.solver = solver or thread_solver()
        self.ledger = HashChainLedger(store.ledger_collection, CARBON_CHAIN)

    async def ensure_indexes(self) -> None:
        await self.store.ensure_indexes()
        await self.ledger.ensure_indexes()

    def tomorrow(self) -> str:
        local = datetime.now(ZoneInfo(self.fleet.assumptions.timezone))
        return (local + timedelta(days=1)).date().isoformat()

    def local_clock_now(self) -> str:
        return datetime.now(ZoneInfo(self.fleet.assumptions.timezone)).strftime("%H:%M")

    async def plan_day(
        self,
        date: str,
        *,
        backend: str | None = None,
        time_limit: float = 10.0,
        objective: Objective | None = None,
    ) -> dict[str, Any]:
        pickups = await self.store.open_pickups(date)
        if not pickups:
            raise PlanningError(f"no open pick-ups for {date}")
        objective = objective or self.fleet.objective
        day = build_day_problem(self.fleet, pickups, objective=objective)
        outcome = await self.solver(day.problem, backend, time_limit)
        previous = await self.store.latest_plan(date)
        plan = await self._publish(day, outcome, date=date, objective=objective, time_limit=time_limit)
        if previous is not None and previous.get("status") != "superseded":
            await self.store.supersede(str(previous["_id"]), plan["_id"])  # one plan per day counts
        return plan

    async def replan(
        self,
        plan_id: str,
        *,
        now: str,
        add: list[str] | None = None,
        cancel: list[str] | None = None,
        delays_minutes: Mapping[str, float] | None = None,
        positions: Mapping[str, GeoPoint] | None = None,
        backend: str | None = None,
        time_limit: float = 10.0,
    ) -> dict[str, Any]:
        """Re-plan a plan from ``now`` (HH:MM): done stops stay, added pick-ups join, cancelled
        ones leave, delayed vehicles go on later, moved vehicles go on from where they are."""
        old = await self.store.get_plan(plan_id)
        if old is None:
            raise PlanningError(f"no plan {plan_id}")
        if old.get("status") == "superseded":
            raise PlanningError(f"plan {plan_id} was already re-planned as {old.get('superseded_by')}")
        unknown_vehicles = set(delays_minutes or {}) | set(positions or {})
        unknown_vehicles -= {v.id for v in self.fleet.vehicles}
        if unknown_vehicles:
            raise PlanningError(f"unknown vehicles: {', '.join(sorted(unknown_vehicles))}")
        planned_ids = [s["pickup_id"] for r in old["routes"] for s in r["stops"]]
        planned_ids += [u["pickup_id"] for u in old["unserved"]]
        added = await self.store.by_ids(list(add or []))
        missing = set(add or []) - {p.pickup_id for p in added}
        if missing:
            raise PlanningError(f"unknown pick-ups: {', '.join(sorted(missing))}")
        for pickup_id in cancel or []:
            await self.store.cancel(pickup_id)
        pickups = await self.store.by_ids(planned_ids)
        cancelled = {p.pickup_id for p in pickups if p.status is PickupStatus.CANCELLED} | set(cancel or [])
        objective = Objective.model_validate(old["objective"])
        day = build_day_problem(self.fleet, [*pickups, *added], objective=objective, positions=positions)
        added_ids = {p.pickup_id for p in added}
        base = replace(day.problem, stops=tuple(s for s in day.problem.stops if s.id not in added_ids))
        previous = RoutingSolution(
            routes=tuple(Route(r["vehicle_id"], tuple(s["pickup_id"] for s in r["stops"])) for r in old["routes"]),
            unserved=tuple(u["pickup_id"] for u in old["unserved"] if u["pickup_id"] in base.stop_by_id),
            stats=SolveStats(backend=old["backend"], seconds=0.0, objective=0),
        )
        progress = progress_at(base, previous, clock_seconds(now), frozenset(cancelled))
        for vehicle_id, location in day.position_locations.items():
            # Reported by the van: it goes on from there (it has left its depot).
            progress[vehicle_id] = replace(progress[vehicle_id], location=location, departed=True)
        changes = Changes(
            add=tuple(s for s in day.problem.stops if s.id in added_ids),
            cancel=frozenset(cancelled),
            delays={v: round(m * 60) for v, m in (delays_minutes or {}).items()},
        )
        remaining = remaining_problem(base, previous, progress, changes)
        outcome = await self.solver(remaining, backend, time_limit)
        # The stored plan shows the whole day: done stops, then the new routes.
        day_of_remaining = replace(day, problem=remaining)
        plan = await self._publish(
            day_of_remaining,
            outcome,
            date=old["date"],
            objective=objective,
            time_limit=time_limit,
            replaces=old,
            progress=progress,
            now=now,
        )
        await self.store.supersede(plan_id, plan["_id"])
        return plan

    async def _publish(
        self,
        day: DayProblem,
        outcome: SolveOutcome,
        *,
        date: str,
        objective: Objective,
        time_limit: float,
        replaces: dict[str, Any] | None = None,
        progress: Mapping[str, VehicleProgress] | None = None,
        now: str | None = None,
    ) -> dict[str, Any]:
        report = check(day.problem, outcome.solution)
        if not report.feasible:
            # Never store a plan the checker rejects: that is a solver or model bug.
            raise PlanningError(f"{outcome.backend} returned a plan that breaks constraints: {report.violations[:5]}")
        plan_id = str(ObjectId())
        plan = plan_document(
            plan_id,
            date,
            day,
            outcome,
            report,
            objective=objective,
            time_limit=time_limit,
            replaces=replaces,
            progress=progress or {},
            now=now,
        )
        await self.store.save_plan(plan)
        served = [s["pickup_id"] for r in plan["routes"] for s in r["stops"] if not s.get("done")]
        await self.store.set_status(served, PickupStatus.PLANNED, plan_id)
        timestamp = now_iso()
        for route in plan["routes"]:
            kind = day.vehicle_types[route["vehicle_id"]]
            await self.ledger.append(
                carbon_record(
                    kind="planned",
                    timestamp=timestamp,
                    transport_id=route["vehicle_id"],
                    route=[s["pickup_id"] for s in route["stops"]],
                    distance_km=route["distance_km"],
                    profile=kind.energy,
                    plan_id=plan_id,
                )
                | {"date": date}
            )
        plan["ledger_head"] = await self.ledger.head()
        await asyncio.to_thread(self._write_files, plan)
        return plan

    def _write_files(self, plan: dict[str, Any]) -> None:
        from backoffice.routing.plot import render_plan  # matplotlib loads only when drawing

        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / f"plan-{plan['_id']}.json").write_text(
            json.dumps(plan, ensure_ascii=False, indent=1), encoding="utf-8"
        )
        render_plan(plan, self.out_dir / f"plan-{plan['_id']}.png")

    def png_path(self, plan_id: str) -> Path:
        return self.out_dir / f"plan-{plan_id}.png"

    async def png(self, plan: dict[str, Any]) -> Path:
        """The plan's image, drawn again if the file is gone (another host, a cleaned var/)."""
        path = self.png_path(str(plan["_id"]))
        if not path.exists():
            from backoffice.routing.plot import render_plan

            self.out_dir.mkdir(parents=True, exist_ok=True)
            await asyncio.to_thread(render_plan, plan, path)
        return path

    # -- carbon ------------------------------------------------------------------------------

    async def record_actual(
        self,
        plan_id: str,
        vehicle_id: str,
        *,
        distance_km: float,
        energy: float | None = None,
        route: list[str] | None = None,
    ) -> dict[str, Any]:
        """Append the driven route's carbon record (from a meter reading when given)."""
        plan = await self.store.get_plan(plan_id)
        if plan is None:
            raise PlanningError(f"no plan {plan_id}")
        planned = next((r for r in plan["routes"] if r["vehicle_id"] == vehicle_id), None)
        if planned is None:
            raise PlanningError(f"vehicle {vehicle_id} has no route in plan {plan_id}")
        if distance_km < 0 or (energy is not None and energy < 0):
            raise PlanningError("distance and energy cannot be negative")
        kind = self.fleet.vehicle_type(next(v.type for v in self.fleet.vehicles if v.id == vehicle_id))
        record = carbon_record(
            kind="actual",
            timestamp=now_iso(),
            transport_id=vehicle_id,
            route=route if route is not None else [s["pickup_id"] for s in planned["stops"]],
            distance_km=distance_km,
            profile=kind.energy,
            energy=energy,
            plan_id=plan_id,
        ) | {"date": plan["date"]}
        await self.ledger.append(record)
        return record

    async def carbon_report(self, date: str) -> dict[str, Any]:
        """Planned CO2 of the day's current plan against what was driven, per vehicle."""
        entries = await self.ledger.entries(date=date)
        verification = await self.ledger.verify()
        current = await self.store.latest_plan(date)
        current_id = current["_id"] if current else None
        counted = [e.record for e in entries if e.record["kind"] == "actual" or e.record.get("plan_id") == current_id]
        rows = compare(counted)
        planned_total = round(sum(r.planned_kg for r in rows), 3)
        actual_total = round(sum(r.actual_kg for r in rows if r.actual_kg is not None), 3)
        return {
            "date": date,
            "vehicles": [
                {
                    "transport_id": r.transport_id,
                    "planned_co2_kg": r.planned_kg,
                    "actual_co2_kg": r.actual_kg,
                    "difference_kg": r.difference_kg,
                }
                for r in rows
            ],
            "plan_id": current_id,
            "planned_co2_kg": planned_total,
            "actual_co2_kg": actual_total,
            "records": len(entries),
            "ledger": {
                "ok": verification.ok,
                "entries": verification.entries,
                "head": verification.head,
                "problem": verification.problem,
            },
        }


# -- the stored plan -------------------------------------------------------------------------


def plan_document(
    plan_id: str,
    date: str,
    day: DayProblem,
    outcome: SolveOutcome,
    report: PlanReport,
    *,
    objective: Objective,
    time_limit: float,
    replaces: dict[str, Any] | None,
    progress: Mapping[str, VehicleProgress],
    now: str | None,
) -> dict[str, Any]:
    problem = day.problem
    stops_by_id = problem.stop_by_id
    depots = {d.id: d for d in day.problem.depots}
    fleet_depot = {v.id: v.end_depot for v in problem.vehicles}
    old_routes = {r["vehicle_id"]: r for r in (replaces or {}).get("routes", [])}
    routes: list[dict[str, Any]] = []
    for route in report.routes:
        kind = day.vehicle_types[route.vehicle_id]
        state = progress.get(route.vehicle_id)
        done_ids = state.done if state else ()
        done_stops = [s for s in old_routes.get(route.vehicle_id, {}).get("stops", []) if s["pickup_id"] in done_ids]
        # The day's distance: what it drove before the re-plan, then the new route from there.
        distance_km = round((route.distance + (state.driven if state else 0)) / 1000, 3)
        energy = kind.energy
        stops = [dict(s, done=True) for s in done_stops]
        for visit in route.visits:
            pickup = day.pickups[visit.stop_id]
            stop = stops_by_id[visit.stop_id]
            location = day.sites[stop.location]
            stops.append(
                {
                    "pickup_id": pickup.pickup_id,
                    "order_id": pickup.order_id,
                    "kind": pickup.kind,
                    "customer_name": pickup.customer_name,
                    "address": pickup.address,
                    "lat": location.lat,
                    "lon": location.lon,
                    "window": f"{pickup.window_start}-{pickup.window_end}",
                    "arrival": clock_text(visit.arrival),
                    "start": clock_text(visit.start),
                    "departure": clock_text(visit.departure),
                    "parcels": pickup.parcels.count,
                    "exchange_items": pickup.exchange.count if pickup.exchange else 0,
                    "load_after": _load_dict(visit.load_after),
                }
            )
        depot = depots[fleet_depot[route.vehicle_id]]
        depot_site = day.sites[depot.location]
        departed = state is not None and state.departed and route.vehicle_id in old_routes
        # A re-planned vehicle keeps the day's departure; its route is drawn from the depot.
        departure = clock_seconds(old_routes[route.vehicle_id]["depart"]) if departed else route.departure
        routes.append(
            {
                "vehicle_id": route.vehicle_id,
                "vehicle_type": kind.id,
                "depot_id": depot.id,
                "start": {"lat": depot_site.lat, "lon": depot_site.lon},
                "end": {"lat": depot_site.lat, "lon": depot_site.lon},
                "depart": clock_text(departure),
                "return": clock_text(route.return_time),
                "duration_min": round((route.return_time - departure) / 60, 1),
                "distance_km": distance_km,
                "max_load": _load_dict(route.max_load),
                "picked_up": _load_dict(route.picked_up),
                "delivered": _load_dict(route.delivered),
                energy_field(energy.unit): round(energy.energy(distance_km), 3),
                "co2_kg": round(energy.co2_kg(distance_km=distance_km), 3),
                "cost_yuan": round(kind.fixed_cost + kind.cost_per_km * distance_km, 2),
                "stops": stops,
            }
        )
    unserved = [
        {
            "pickup_id": s,
            "order_id": day.pickups[s].order_id,
            "lat": day.sites[stops_by_id[s].location].lat,
            "lon": day.sites[stops_by_id[s].location].lon,
            "reason": "left out: no vehicle fits it into its time window and capacity at an acceptable cost",
        }
        for s in report.unserved
    ] + [{"pickup_id": s, "order_id": "", "reason": reason} for s, reason in day.not_plannable.items()]
    co2 = round(sum(r["co2_kg"] for r in routes), 3)
    return {
        "_id": plan_id,
        "date": date,
        "created_at": now_iso(),
        "status": "planned",
        "revision": int((replaces or {}).get("revision", 0)) + 1,
        "replaces": (replaces or {}).get("_id"),
        "replanned_at": now,
        "backend": outcome.backend,
        "fallback_reason": outcome.fallback_reason,
        "objective": objective.model_dump(mode="json"),
        "time_limit_s": time_limit,
        "solve_seconds": outcome.solution.stats.seconds,
        "progress": [[t, round(c / MICROS, 2)] for t, c in outcome.solution.stats.progress],
        "totals": {
            "vehicles": len(routes),
            "stops": sum(len(r["stops"]) for r in routes),
            "unserved": len(unserved),
            "distance_km": round(sum(r["distance_km"] for r in routes), 3),
            "co2_kg": co2,
            "cost_yuan": round(sum(r["cost_yuan"] for r in routes), 2),
            "objective": round(report.cost / MICROS, 2),
        },
        "depots": [
            {
                "id": d.id,
                "lat": day.sites[d.location].lat,
                "lon": day.sites[d.location].lon,
                "opens": clock_text(d.opens),
                "closes": clock_text(d.closes),
                "handling_capacity_parcels": d.handling_capacity,
                "parcels_in": report.handled.get(d.id, 0),
            }
            for d in problem.depots
        ],
        "routes": routes,
        "unserved": unserved,
        "feasibility": {"feasible": report.feasible, "violations": list(report.violations)},
    }


def _load_dict(load: tuple[int, ...]) -> dict[str, float]:
    return {"parcels": load[0], "weight_kg": load[1] / 10, "volume_l": load[2]}
