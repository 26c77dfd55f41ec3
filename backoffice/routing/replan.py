"""Re-planning during the day: what is done stays done, the rest is planned again.

From the plan being driven and the time now, :func:`progress_at` works out for each vehicle the
stops it is committed to (served, or already on its way to), where it will be when it can go
on, and what it carries. :func:`remaining_problem`
turns that, plus the changes (stops added or cancelled, vehicles delayed), into a new problem
whose vehicles start where they are now. :func:`merge` puts the done part back in front of the
new routes, so the day's plan stays whole.

A vehicle that has left its depot carries the exchange items of its remaining stops: those stops
stay with it, and it cannot take on exchange stops whose items are still at the depot.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from backoffice.routing.feasibility import check_routes
from backoffice.routing.model import Load, Route, RoutingProblem, RoutingSolution, Stop, add_loads, zero_load


@dataclass(frozen=True, slots=True)
class VehicleProgress:
    vehicle_id: str
    done: tuple[str, ...]
    """Stops served, being served or under way to at ``now``, in order: no longer re-planned."""
    location: int
    available_from: int
    onboard: Load
    """Picked-up load on board (exchange items still to hand over are not counted here)."""
    departed: bool
    driven: int
    """Distance driven so far, counted against the vehicle's range."""


@dataclass(frozen=True, slots=True)
class Changes:
    add: tuple[Stop, ...] = ()
    cancel: frozenset[str] = frozenset()
    delays: Mapping[str, int] = field(default_factory=dict)
    """Extra time before each named vehicle can go on (breakdown, traffic, late driver)."""


def progress_at(
    problem: RoutingProblem, solution: RoutingSolution, now: int, cancelled: frozenset[str] = frozenset()
) -> dict[str, VehicleProgress]:
    """Each vehicle's state at ``now`` assuming it kept to the plan. Its position is its last
    committed stop, from that stop's planned departure on. Replace entries with reported
    positions when the telematics know better."""
    report = check_routes(problem, solution.routes, solution.unserved)
    stops = problem.stop_by_id
    width = len(problem.dimensions)
    states: dict[str, VehicleProgress] = {}
    for vehicle in problem.vehicles:
        states[vehicle.id] = VehicleProgress(
            vehicle_id=vehicle.id,
            done=(),
            location=vehicle.start_location,
            available_from=max(now, problem.earliest_departure(vehicle)),
            onboard=vehicle.onboard or zero_load(width),
            departed=vehicle.start_depot is None,
            driven=0,
        )
    for route in report.routes:
        vehicle = problem.vehicle_by_id[route.vehicle_id]
        if now <= route.departure:
            continue  # still at its depot: nothing on board yet, it may be given any stop
        # A stop is committed once the vehicle has set off for it: served, being served, or
        # under way to it (a van is not turned round mid-street). A cancelled stop never is.
        done = []
        left_previous = route.departure
        for visit in route.visits:
            if left_previous > now or visit.stop_id in cancelled:
                break
            done.append(visit)
            left_previous = visit.departure
        location = stops[done[-1].stop_id].location if done else vehicle.start_location
        onboard = vehicle.onboard or zero_load(width)
        for visit in done:
            onboard = add_loads(onboard, stops[visit.stop_id].pickup)
        driven, here = 0, vehicle.start_location
        for visit in done:
            driven += int(problem.distance[here, stops[visit.stop_id].location])
            here = stops[visit.stop_id].location
        states[vehicle.id] = VehicleProgress(
            vehicle_id=vehicle.id,
            done=tuple(v.stop_id for v in done),
            location=location,
            available_from=max(now, done[-1].departure if done else route.departure),
            onboard=onboard,
            departed=True,
            driven=driven,
        )
    return states


def remaining_problem(
    problem: RoutingProblem,
    solution: RoutingSolution,
    progress: Mapping[str, VehicleProgress],
    changes: Changes,
) -> RoutingProblem:
    done = {stop_id for state in progress.values() for stop_id in state.done}
    departed = {vehicle_id for vehicle_id, state in progress.items() if state.departed}
    carried_by: dict[str, str] = {}
    for route in solution.routes:
        if route.vehicle_id in departed:
            for stop_id in route.stop_ids:
                if stop_id not in done and any(problem.stop_by_id[stop_id].delivery):
                    carried_by[stop_id] = route.vehicle_id
    at_depot = frozenset(v.id for v in problem.vehicles if v.id not in departed)

    stops: list[Stop] = []
    for stop in (*problem.stops, *changes.add):
        if stop.id in done or stop.id in changes.cancel:
            continue
        if stop.id in carried_by:
            stop = replace(stop, allowed_vehicles=frozenset({carried_by[stop.id]}))
        elif any(stop.delivery) and departed:
            stop = replace(stop, allowed_vehicles=at_depot & (stop.allowed_vehicles or at_depot))
        stops.append(stop)

    vehicles = []
    for vehicle in problem.vehicles:
        state = progress.get(vehicle.id)
        delay = changes.delays.get(vehicle.id, 0)
        if state is None:
            vehicles.append(replace(vehicle, available_from=vehicle.available_from + delay))
        elif state.departed:
            vehicles.append(
                replace(
                    vehicle,
                    start_location=state.location,
                    start_depot=None,
                    available_from=state.available_from + delay,
                    onboard=state.onboard,
                    max_distance=None if vehicle.max_distance is None else max(0, vehicle.max_distance - state.driven),
                )
            )
        else:
            vehicles.append(replace(vehicle, available_from=state.available_from + delay))
    return replace(problem, stops=tuple(stops), vehicles=tuple(vehicles))


def merge(progress: Mapping[str, VehicleProgress], remaining: RoutingSolution) -> RoutingSolution:
    """The whole day: each vehicle's done stops followed by its re-planned ones."""
    new = {route.vehicle_id: route.stop_ids for route in remaining.routes}
    vehicle_ids = list(dict.fromkeys([*progress, *new]))
    routes = tuple(
        Route(vehicle_id, (*(progress[vehicle_id].done if vehicle_id in progress else ()), *new.get(vehicle_id, ())))
        for vehicle_id in vehicle_ids
    )
    return replace(remaining, routes=routes)
