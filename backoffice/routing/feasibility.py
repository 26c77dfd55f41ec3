"""An independent check of a plan against the problem, and the numbers a plan is reported with.

Nothing here trusts a solver: the schedule, loads, distances and cost are recomputed from the
problem's matrices for the routes as given, with the earliest feasible schedule (a vehicle
leaves as early as it may and waits when it arrives before a stop's window opens, which never
makes a later stop harder to reach in time; the departure is then put off by any wait at the first
stop). Every violation is reported, not just the first.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from backoffice.routing.model import Load, Route, RoutingProblem, RoutingSolution, Vehicle, add_loads, zero_load


@dataclass(frozen=True, slots=True)
class Visit:
    stop_id: str
    arrival: int
    start: int
    departure: int
    load_after: Load


@dataclass(frozen=True, slots=True)
class RouteReport:
    vehicle_id: str
    visits: tuple[Visit, ...]
    departure: int
    return_time: int
    distance: int
    max_load: Load
    picked_up: Load
    delivered: Load
    cost: int

    @property
    def duration(self) -> int:
        return self.return_time - self.departure


@dataclass(frozen=True, slots=True)
class PlanReport:
    routes: tuple[RouteReport, ...]
    unserved: tuple[str, ...]
    violations: tuple[str, ...]
    cost: int
    """Fixed and distance costs of used vehicles plus penalties of unserved stops."""
    distance: int
    penalties: int = 0
    handled: dict[str, int] = field(default_factory=dict)
    """Units of the first dimension taken in per depot."""

    @property
    def feasible(self) -> bool:
        return not self.violations


def check(problem: RoutingProblem, solution: RoutingSolution) -> PlanReport:
    return check_routes(problem, solution.routes, solution.unserved)


def check_routes(problem: RoutingProblem, routes: tuple[Route, ...], unserved: tuple[str, ...]) -> PlanReport:
    violations: list[str] = []
    stops = problem.stop_by_id
    vehicles = problem.vehicle_by_id

    seen = Counter(stop_id for route in routes for stop_id in route.stop_ids)
    for stop_id, count in seen.items():
        if stop_id not in stops:
            violations.append(f"unknown stop {stop_id}")
        elif count > 1:
            violations.append(f"stop {stop_id} visited {count} times")
    for stop_id in unserved:
        if stop_id in seen:
            violations.append(f"stop {stop_id} both visited and reported unserved")
        elif stop_id not in stops:
            violations.append(f"unknown unserved stop {stop_id}")
        elif stops[stop_id].penalty is None:
            violations.append(f"stop {stop_id} must be served but is not")
    for stop_id in stops:
        if stop_id not in seen and stop_id not in unserved:
            violations.append(f"stop {stop_id} neither visited nor reported unserved")

    vehicle_uses = Counter(route.vehicle_id for route in routes)
    for vehicle_id, count in vehicle_uses.items():
        if vehicle_id not in vehicles:
            violations.append(f"unknown vehicle {vehicle_id}")
        elif count > 1:
            violations.append(f"vehicle {vehicle_id} has {count} routes")

    reports: list[RouteReport] = []
    handled: Counter[str] = Counter()
    for vehicle in problem.vehicles:  # parcels already on board are handed in at the end too
        handled[vehicle.end_depot] += vehicle.onboard[0] if vehicle.onboard else 0
    for route in routes:
        route_vehicle = vehicles.get(route.vehicle_id)
        if route_vehicle is None or any(s not in stops for s in route.stop_ids):
            continue
        vehicle = route_vehicle
        if not route.stop_ids and vehicle.start_depot is not None:
            continue  # an unused vehicle at its depot: no route

        report = _route(problem, vehicle, route, violations)
        reports.append(report)
        handled[vehicle.end_depot] += report.picked_up[0] if report.picked_up else 0

    for depot in problem.depots:
        if depot.handling_capacity is not None and handled[depot.id] > depot.handling_capacity:
            violations.append(
                f"depot {depot.id} takes in {handled[depot.id]} {problem.dimensions[0]}, "
                f"more than its handling capacity {depot.handling_capacity}"
            )

    penalties = sum(stops[s].penalty or 0 for s in unserved if s in stops)
    return PlanReport(
        routes=tuple(reports),
        unserved=tuple(unserved),
        violations=tuple(violations),
        cost=sum(r.cost for r in reports) + penalties,
        distance=sum(r.distance for r in reports),
        penalties=penalties,
        handled=dict(handled),
    )


def _route(problem: RoutingProblem, vehicle: Vehicle, route: Route, violations: list[str]) -> RouteReport:
    stops = problem.stop_by_id
    width = len(problem.dimensions)
    where = f"vehicle {vehicle.id}"
    delivered = zero_load(width)
    picked_up = zero_load(width)
    for stop_id in route.stop_ids:
        stop = stops[stop_id]
        delivered = add_loads(delivered, stop.delivery)
        picked_up = add_loads(picked_up, stop.pickup)
        if stop.allowed_vehicles is not None and vehicle.id not in stop.allowed_vehicles:
            violations.append(f"{where}: stop {stop_id} may not be served by this vehicle")

    # Exchange items are loaded before departure and leave the vehicle at their stop.
    load = add_loads(vehicle.onboard or zero_load(width), delivered)
    max_load = load
    _check_capacity(problem, vehicle, load, f"{where} at departure", violations)

    departure = problem.earliest_departure(vehicle)
    time = departure
    here = vehicle.start_location
    distance = 0
    visits: list[Visit] = []
    for stop_id in route.stop_ids:
        stop = stops[stop_id]
        distance += int(problem.distance[here, stop.location])
        arrival = time + int(problem.duration[here, stop.location])
        start = max(arrival, stop.ready)
        if start > stop.due:
            violations.append(f"{where}: stop {stop_id} starts at {start}, after its window closes at {stop.due}")
        load = tuple(x - d + p for x, d, p in zip(load, stop.delivery, stop.pickup, strict=True))
        max_load = tuple(max(a, b) for a, b in zip(max_load, load, strict=True))
        _check_capacity(problem, vehicle, load, f"{where} after stop {stop_id}", violations)
        time = start + stop.service_time
        visits.append(Visit(stop_id, arrival, start, time, load))
        here = stop.location
    if visits and visits[0].start > visits[0].arrival:
        # Leave later rather than wait at the first stop: same feasibility, shorter day.
        wait = visits[0].start - visits[0].arrival
        departure += wait
        first = visits[0]
        visits[0] = Visit(first.stop_id, first.start, first.start, first.departure, first.load_after)
    end = problem.end_location(vehicle)
    distance += int(problem.distance[here, end])
    return_time = time + int(problem.duration[here, end])
    if return_time > problem.latest_return(vehicle):
        violations.append(
            f"{where}: returns at {return_time}, after the depot closes or the shift ends at "
            f"{problem.latest_return(vehicle)}"
        )
    if vehicle.max_distance is not None and distance > vehicle.max_distance:
        violations.append(f"{where}: drives {distance}, more than its range {vehicle.max_distance}")
    return RouteReport(
        vehicle_id=vehicle.id,
        visits=tuple(visits),
        departure=departure,
        return_time=return_time,
        distance=distance,
        max_load=max_load,
        picked_up=picked_up,
        delivered=delivered,
        # A vehicle re-planned mid-route with nothing left to do still drives back; its fixed
        # cost is sunk and, as in both solvers, only charged for a route with stops.
        cost=(vehicle.fixed_cost if route.stop_ids else 0) + vehicle.distance_cost * distance,
    )


def _check_capacity(problem: RoutingProblem, vehicle: Vehicle, load: Load, where: str, violations: list[str]) -> None:
    for name, amount, capacity in zip(problem.dimensions, load, vehicle.capacity, strict=True):
        if amount > capacity:
            violations.append(f"{where}: {name} {amount} exceeds capacity {capacity}")
