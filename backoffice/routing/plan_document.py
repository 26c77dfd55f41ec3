"""The stored form of a plan: what the console, the API, the image and the ledger read.

Built from the checker's report (never from solver output) and the day's problem: per route the
stops with arrival, start and departure times (``HH:MM``), loads, distance, duration, energy,
CO2 and money; unserved pick-ups with the reason; per depot the parcels it takes in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from backoffice.routing.backend import SolveOutcome
from backoffice.routing.day import DayProblem
from backoffice.routing.emissions import energy_field
from backoffice.routing.feasibility import PlanReport
from backoffice.routing.fleet import MICROS, Objective, clock_seconds, clock_text
from backoffice.routing.pickups import now_iso
from backoffice.routing.replan import VehicleProgress


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
