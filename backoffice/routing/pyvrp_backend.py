"""PyVRP (iterated local search, state of the art for VRPTW), behind the same interface.

Vehicles that share every attribute become one PyVRP vehicle type; a vehicle starting from its
current position (re-planning) gets that position as its own start depot. PyVRP cannot express
a depot's handling capacity or restrict a stop to some vehicles: :meth:`unsupported` says so
and the planner then uses OR-Tools for that problem.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyvrp
from pyvrp.stop import StoppingCriterion

from backoffice.routing.backend import NoSolutionFound, ProgressTracker, RoutingBackend
from backoffice.routing.model import (
    Route,
    RoutingProblem,
    RoutingSolution,
    SolveOptions,
    SolveStats,
    Vehicle,
    zero_load,
)

UNLIMITED = int(np.iinfo(np.int64).max)


class _TimeLimit(StoppingCriterion):
    """Stops at the deadline, counted from before PyVRP builds its first solution, and reports
    each new best cost on the way (PyVRP calls this once per iteration with the best cost)."""

    def __init__(self, deadline: float, on_best: Callable[[int], None]) -> None:
        self.deadline = deadline
        self.on_best = on_best

    def __call__(self, best_cost: float) -> bool:
        if best_cost != float("inf"):
            self.on_best(int(best_cost))
        return time.monotonic() >= self.deadline


@dataclass(frozen=True, slots=True)
class _Fleet:
    vehicle_types: list[pyvrp.VehicleType]
    members: list[list[Vehicle]]


class PyVrpBackend(RoutingBackend):
    name = "pyvrp"

    def unsupported(self, problem: RoutingProblem) -> list[str]:
        reasons: list[str] = []
        if any(d.handling_capacity is not None for d in problem.depots) and _handling_may_bind(problem):
            reasons.append("a depot's handling capacity")
        if any(s.allowed_vehicles is not None for s in problem.stops):
            reasons.append("stops restricted to some vehicles")
        return reasons

    def solve(self, problem: RoutingProblem, options: SolveOptions) -> RoutingSolution:
        tracker = ProgressTracker(options.progress)
        data, fleet = _problem_data(problem)
        stop = _TimeLimit(tracker.started_at + options.time_limit, tracker.offer)
        if options.progress is not None:
            options.progress.started(options.time_limit)
        try:
            result = pyvrp.solve(data, stop=stop, seed=options.seed, collect_stats=False, display=False)
        finally:
            if options.progress is not None:
                options.progress.finished()
        best = result.best
        if not best.is_feasible():
            raise NoSolutionFound(f"PyVRP found no feasible plan in {options.time_limit:g} s")
        used: dict[int, int] = {}
        routes: list[Route] = []
        visited: set[str] = set()
        for pyvrp_route in best.routes():
            type_number = pyvrp_route.vehicle_type()
            vehicle = fleet.members[type_number][used.get(type_number, 0)]
            used[type_number] = used.get(type_number, 0) + 1
            stop_ids = tuple(problem.stops[a.idx].id for a in pyvrp_route if a.is_client())
            visited.update(stop_ids)
            routes.append(Route(vehicle.id, stop_ids))
        routed = {r.vehicle_id for r in routes}
        routes.extend(Route(v.id, ()) for v in problem.vehicles if v.id not in routed)
        objective = int(result.cost())
        tracker.offer(objective)
        return RoutingSolution(
            routes=tuple(routes),
            unserved=tuple(s.id for s in problem.stops if s.id not in visited),
            stats=SolveStats(
                backend=self.name,
                seconds=round(tracker.elapsed(), 3),
                objective=objective,
                progress=tuple(tracker.history),
            ),
        )


def _handling_may_bind(problem: RoutingProblem) -> bool:
    """False when every depot could take in all pick-ups, so the limit cannot matter."""
    total = sum(s.pickup[0] for s in problem.stops) + sum((v.onboard or (0,))[0] for v in problem.vehicles)
    return any(d.handling_capacity is not None and d.handling_capacity < total for d in problem.depots)


def _problem_data(problem: RoutingProblem) -> tuple[pyvrp.ProblemData, _Fleet]:
    width = len(problem.dimensions)
    locations = [pyvrp.Location(x=p.x, y=p.y) for p in problem.points]
    depots = [pyvrp.Depot(location=d.location, tw_early=d.opens, tw_late=d.closes, name=d.id) for d in problem.depots]
    depot_number = {d.id: n for n, d in enumerate(problem.depots)}
    start_depot: dict[str, int] = {}
    for vehicle in problem.vehicles:
        if vehicle.start_depot is not None:
            start_depot[vehicle.id] = depot_number[vehicle.start_depot]
        else:  # starts where it is now: that position is its own start "depot"
            start_depot[vehicle.id] = len(depots)
            depots.append(pyvrp.Depot(location=vehicle.start_location, name=f"{vehicle.id}@now"))

    groups: dict[tuple[object, ...], list[Vehicle]] = {}
    for vehicle in problem.vehicles:
        key = (
            vehicle.capacity,
            start_depot[vehicle.id],
            vehicle.end_depot,
            problem.earliest_departure(vehicle),
            problem.latest_return(vehicle),
            vehicle.distance_cost,
            vehicle.fixed_cost,
            vehicle.max_distance,
            vehicle.onboard or zero_load(width),
        )
        groups.setdefault(key, []).append(vehicle)
    vehicle_types = []
    for members in groups.values():
        first = members[0]
        vehicle_types.append(
            pyvrp.VehicleType(
                num_available=len(members),
                capacity=list(first.capacity),
                start_depot=start_depot[first.id],
                end_depot=depot_number[first.end_depot],
                fixed_cost=first.fixed_cost,
                tw_early=problem.earliest_departure(first),
                tw_late=problem.latest_return(first),
                max_distance=first.max_distance if first.max_distance is not None else UNLIMITED,
                unit_distance_cost=first.distance_cost,
                initial_load=list(first.onboard or zero_load(width)),
                name=",".join(v.id for v in members),
            )
        )
    clients = [
        pyvrp.Client(
            location=s.location,
            delivery=list(s.delivery),
            pickup=list(s.pickup),
            service_duration=s.service_time,
            tw_early=s.ready,
            tw_late=s.due,
            prize=s.penalty or 0,
            required=s.penalty is None,
            name=s.id,
        )
        for s in problem.stops
    ]
    data = pyvrp.ProblemData(
        locations=locations,
        clients=clients,
        depots=depots,
        vehicle_types=vehicle_types,
        # PyVRP's stub spells the matrix type ndarray[int], which numpy's own types never match.
        distance_matrices=[np.ascontiguousarray(problem.distance, dtype=np.int64)],  # type: ignore[list-item]
        duration_matrices=[np.ascontiguousarray(problem.duration, dtype=np.int64)],  # type: ignore[list-item]
    )
    return data, _Fleet(vehicle_types, list(groups.values()))
