"""A day's pick-ups and fleet as a :class:`RoutingProblem`, and what its indexes mean.

Locations: the depots first, then one per pick-up (two pick-ups at one address are still two
visits), then any vehicle positions reported for re-planning. Distances in metres and times in
seconds after midnight on the service day; loads as (parcels, 100 g, litres), rounded up for
stops and down for capacities, so rounding never overloads a van; costs in micro-yuan (or
micro-kg in CO2 mode), from the objective.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

from backoffice.routing.fleet import MICROS, Fleet, GeoPoint, Objective, VehicleTypeConfig, clock_seconds
from backoffice.routing.matrices import road_matrices
from backoffice.routing.model import Depot, Point, RoutingProblem, Stop, Vehicle
from backoffice.routing.pickups import Pickup

DIMENSIONS = ("parcels", "weight_100g", "volume_l")


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
