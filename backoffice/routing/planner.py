"""Plan a day's pick-ups from the store: build the problem, solve, check, record, draw.

The planner turns open pick-ups and the fleet file into a :class:`RoutingProblem` (``day``),
solves it with the chosen backend (falling back to OR-Tools when that backend cannot model the
problem), checks the plan with the independent checker, and only then stores it
(``plan_document``), marks the pick-ups planned, appends one planned carbon record per route to
the ledger and writes a JSON and PNG copy under ``var/routes``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Executor
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bson import ObjectId

from backoffice.ledger import HashChainLedger
from backoffice.routing.backend import SolveOutcome, solve_problem
from backoffice.routing.day import DayProblem, build_day_problem
from backoffice.routing.emissions import carbon_record, compare
from backoffice.routing.feasibility import check
from backoffice.routing.fleet import Fleet, GeoPoint, Objective, clock_seconds
from backoffice.routing.model import (
    ProgressSink,
    Route,
    RoutingProblem,
    RoutingSolution,
    SolveStats,
)
from backoffice.routing.pickups import PickupStatus, PickupStore, now_iso
from backoffice.routing.plan_document import plan_document
from backoffice.routing.replan import Changes, VehicleProgress, progress_at, remaining_problem
from errors import UserError

log = logging.getLogger(__name__)

CARBON_CHAIN = "carbon"


class PlanningError(UserError):
    """Nothing to plan, or a plan that cannot be made; the message says why."""

    code = "planning_refused"


# -- solving -------------------------------------------------------------------------------


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
        for pickup in added:
            if pickup.status not in (PickupStatus.REQUESTED, PickupStatus.PLANNED) or pickup.date != old["date"]:
                raise PlanningError(f"pick-up {pickup.pickup_id} is {pickup.status.value} for {pickup.date}")
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
        await self.store.set_status(served, PickupStatus.PLANNED, plan_id, date=date)
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
