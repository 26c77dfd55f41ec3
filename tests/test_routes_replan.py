"""Re-planning during the day: done stays done, changes apply, vehicles go on from where they are."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from backoffice.routing.backend import backend_named
from backoffice.routing.demo import demo_pickups
from backoffice.routing.feasibility import check, check_routes
from backoffice.routing.fleet import GeoPoint, load_fleet
from backoffice.routing.model import SolveOptions
from backoffice.routing.pickups import PickupRequest, PickupStatus, PickupStore
from backoffice.routing.planner import PlanningError, RoutePlanner
from backoffice.routing.replan import Changes, merge, progress_at, remaining_problem
from store.mongo import ConversationStore
from tests.routes_factory import pickup_problem

DAY = "2026-11-23"


def test_replan_keeps_done_stops_applies_changes_and_starts_from_current_positions() -> None:
    full = pickup_problem(15, seed=21)
    problem = replace(full, stops=full.stops[:-1])  # the 15th pick-up comes in during the day
    plan = backend_named("ortools").solve(problem, SolveOptions(time_limit=0.5))
    report = check(problem, plan)
    assert report.feasible, report.violations
    busiest = max(report.routes, key=lambda r: len(r.visits))
    assert len(busiest.visits) >= 3
    now = busiest.visits[1].departure - 1  # serving its second stop; the third is not begun

    progress = progress_at(problem, plan, now)
    state = progress[busiest.vehicle_id]
    assert state.done == (busiest.visits[0].stop_id, busiest.visits[1].stop_id)
    assert state.departed and state.location == problem.stop_by_id[state.done[-1]].location
    picked = [sum(problem.stop_by_id[s].pickup[k] for s in state.done) for k in range(2)]
    assert list(state.onboard) == picked
    idle = [v.id for v in problem.vehicles if v.id not in {r.vehicle_id for r in report.routes}]
    assert all(not progress[v].departed and progress[v].available_from == now for v in idle)

    cancelled = busiest.visits[2].stop_id
    added = replace(full.stops[-1], ready=0, due=6000, penalty=None)  # must be served
    changes = Changes(add=(added,), cancel=frozenset({cancelled}), delays={busiest.vehicle_id: 300})
    remaining = remaining_problem(problem, plan, progress, changes)
    remaining_ids = {s.id for s in remaining.stops}
    assert not remaining_ids & set(state.done)
    assert cancelled not in remaining_ids and added.id in remaining_ids
    moved = remaining.vehicle_by_id[busiest.vehicle_id]
    assert moved.start_location == state.location and moved.start_depot is None
    assert moved.available_from == state.available_from + 300 and moved.onboard == state.onboard

    # Exchange items already on a departed vehicle stay with it; others cannot go to it.
    departed = {v for v, p in progress.items() if p.departed}
    for stop in remaining.stops:
        if any(stop.delivery):
            carrier = next(
                (r.vehicle_id for r in plan.routes if stop.id in r.stop_ids and r.vehicle_id in departed), None
            )
            if carrier:
                assert stop.allowed_vehicles == {carrier}
            else:
                assert stop.allowed_vehicles is not None and not stop.allowed_vehicles & departed

    again = backend_named("ortools").solve(remaining, SolveOptions(time_limit=0.5))
    remaining_report = check(remaining, again)
    assert remaining_report.feasible, remaining_report.violations
    assert added.id not in again.unserved
    delayed = next(r for r in remaining_report.routes if r.vehicle_id == busiest.vehicle_id)
    if delayed.visits:
        assert delayed.visits[0].arrival >= now + 300

    day = merge(progress, again)
    served = [s for r in day.routes for s in r.stop_ids]
    assert len(served) == len(set(served)), "no stop twice"
    everything = set(served) | set(day.unserved)
    assert everything == ({s.id for s in problem.stops} - {cancelled}) | {added.id}
    whole = next(r for r in day.routes if r.vehicle_id == busiest.vehicle_id)
    assert whole.stop_ids[:2] == state.done


def test_a_vehicle_still_at_its_depot_is_simply_delayed() -> None:
    problem = pickup_problem(6, seed=3)
    plan = backend_named("pyvrp").solve(problem, SolveOptions(time_limit=0.3))
    progress = progress_at(problem, plan, now=0)
    assert not any(p.departed or p.done for p in progress.values())
    remaining = remaining_problem(problem, plan, progress, Changes(delays={"west-big": 900}))
    vehicle = remaining.vehicle_by_id["west-big"]
    assert vehicle.available_from == 900 and vehicle.start_depot == "west"
    assert check_routes(remaining, plan.routes, plan.unserved).routes is not None


async def test_planner_plans_from_the_store_then_replans_with_changes(store: ConversationStore, tmp_path: Path) -> None:
    pickups = PickupStore(store.db)
    planner = RoutePlanner(pickups, load_fleet(), tmp_path)
    await planner.ensure_indexes()
    for request in demo_pickups(DAY, 14):
        await pickups.request_pickup(request)

    plan = await planner.plan_day(DAY, time_limit=1.0)
    assert plan["feasibility"] == {"feasible": True, "violations": []}
    assert plan["totals"]["stops"] + plan["totals"]["unserved"] == 14
    assert (tmp_path / "routes" / f"plan-{plan['_id']}.png").read_bytes()[:4] == b"\x89PNG"
    assert (await pickups.get(plan["routes"][0]["stops"][0]["pickup_id"])).status is PickupStatus.PLANNED
    planned_records = await planner.ledger.entries(kind="planned", plan_id=plan["_id"])
    assert len(planned_records) == len(plan["routes"])

    route = max(plan["routes"], key=lambda r: len(r["stops"]))
    hours, minutes = map(int, route["stops"][0]["departure"].split(":"))
    now = f"{hours + (minutes + 1) // 60:02d}:{(minutes + 1) % 60:02d}"  # just after the first pick-up
    # ...so it is committed to its first two stops (served, and under way to the second)
    assert len(route["stops"]) >= 3
    late = route["stops"][2]["pickup_id"]  # the vehicle is on its way to the second stop, not the third
    extra = demo_pickups("2026-11-23", 15)[-1].model_dump() | {"pickup_id": "late-call-1"}
    await pickups.request_pickup(PickupRequest.model_validate(extra))
    replanned = await planner.replan(
        plan["_id"],
        now=now,
        cancel=[late],
        add=["late-call-1"],
        delays_minutes={route["vehicle_id"]: 20},
        time_limit=1.0,
    )
    assert replanned["revision"] == 2 and replanned["replaces"] == plan["_id"]
    assert (await pickups.get_plan(plan["_id"]))["status"] == "superseded"
    assert (await pickups.get(late)).status is PickupStatus.CANCELLED
    stops = [s for r in replanned["routes"] for s in r["stops"]]
    ids = [s["pickup_id"] for s in stops]
    assert late not in ids and len(ids) == len(set(ids))
    assert "late-call-1" in ids or "late-call-1" in [u["pickup_id"] for u in replanned["unserved"]]
    same_vehicle = next(r for r in replanned["routes"] if r["vehicle_id"] == route["vehicle_id"])
    assert [s["pickup_id"] for s in same_vehicle["stops"][:2]] == [s["pickup_id"] for s in route["stops"][:2]]
    assert same_vehicle["stops"][0].get("done") is True and same_vehicle["stops"][1].get("done") is True
    assert same_vehicle["depart"] == route["depart"]

    actual = await planner.record_actual(replanned["_id"], route["vehicle_id"], distance_km=50.0)
    report = await planner.carbon_report(DAY)
    row = next(v for v in report["vehicles"] if v["transport_id"] == route["vehicle_id"])
    assert row["planned_co2_kg"] == same_vehicle["co2_kg"]  # the re-plan's record supersedes the first
    assert row["actual_co2_kg"] == actual["co2_kg"]
    assert report["ledger"]["ok"] and report["records"] == len(plan["routes"]) + len(replanned["routes"]) + 1

    with pytest.raises(PlanningError, match="is cancelled"):
        await planner.replan(replanned["_id"], now=now, add=[late])  # a cancelled pick-up stays cancelled

    # The van reports where it is: it goes on from there.
    reported = await planner.replan(
        replanned["_id"], now=now, positions={route["vehicle_id"]: GeoPoint(lat=31.25, lon=121.45)}, time_limit=0.5
    )
    assert reported["revision"] == 3 and reported["feasibility"]["feasible"]
