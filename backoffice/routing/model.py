"""The route-planning data model, in integers the solvers can use unchanged.

A :class:`RoutingProblem` is solver-neutral: locations are indexes into precomputed integer
distance and duration matrices, times are integers on one clock (seconds after midnight for
pick-up planning, tenths of a unit for VRPLIB instances), loads are integer vectors with one
entry per capacity dimension (e.g. parcels, weight in 100 g, volume in litres), and costs are
integers (cost units per distance unit, per vehicle). Backends read a problem and return a
:class:`RoutingSolution` (who visits what, in which order); everything else, times, loads,
distances and cost, is recomputed from the problem by :mod:`backoffice.routing.feasibility`,
never taken from a solver.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

Load = tuple[int, ...]
"""One integer per capacity dimension, in the order of :attr:`RoutingProblem.dimensions`."""

IntMatrix = NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Point:
    """Where a location is drawn and which locations count as neighbours (x east, y north)."""

    x: float
    y: float


@dataclass(frozen=True, slots=True)
class Depot:
    """A return warehouse: where vehicles start and end and parcels are handed in."""

    id: str
    location: int
    opens: int
    closes: int
    handling_capacity: int | None = None
    """Most units of the first dimension (parcels) it can take in from this plan; None: no limit."""


@dataclass(frozen=True, slots=True)
class Stop:
    """One customer visit: a pick-up, optionally with an exchange item delivered on the same call."""

    id: str
    location: int
    pickup: Load
    delivery: Load
    service_time: int
    ready: int
    """Earliest start of service."""
    due: int
    """Latest start of service."""
    penalty: int | None = None
    """Cost of leaving the stop unserved; None means it must be served."""
    allowed_vehicles: frozenset[str] | None = None
    """Only these vehicles may serve it (e.g. its exchange item is already on board); None: any."""


@dataclass(frozen=True, slots=True)
class Vehicle:
    """One vehicle of the fleet, as it is available for this plan."""

    id: str
    capacity: Load
    start_location: int
    end_depot: str
    available_from: int
    return_by: int
    distance_cost: int
    """Cost units per distance unit (money and priced CO2 together, see planner)."""
    fixed_cost: int = 0
    """Cost units charged when the vehicle is used at all."""
    max_distance: int | None = None
    onboard: Load | None = None
    """Load already on board at the start (re-planning mid-route); None: empty."""
    start_depot: str | None = None
    """The depot it starts from, or None when it starts from where it is now (re-planning)."""


@dataclass(frozen=True, slots=True)
class RoutingProblem:
    name: str
    dimensions: tuple[str, ...]
    distance: IntMatrix
    duration: IntMatrix
    points: tuple[Point, ...]
    depots: tuple[Depot, ...]
    stops: tuple[Stop, ...]
    vehicles: tuple[Vehicle, ...]

    def __post_init__(self) -> None:
        size = len(self.points)
        if self.distance.shape != (size, size) or self.duration.shape != (size, size):
            raise ValueError(f"matrices must be {size}x{size}, one row per point")
        width = len(self.dimensions)
        for stop in self.stops:
            if len(stop.pickup) != width or len(stop.delivery) != width:
                raise ValueError(f"stop {stop.id}: loads need {width} dimensions")
            if stop.ready > stop.due:
                raise ValueError(f"stop {stop.id}: time window closes before it opens")
        for vehicle in self.vehicles:
            if len(vehicle.capacity) != width:
                raise ValueError(f"vehicle {vehicle.id}: capacity needs {width} dimensions")
            if vehicle.end_depot not in self.depot_by_id:
                raise ValueError(f"vehicle {vehicle.id}: unknown depot {vehicle.end_depot}")
        ids = [s.id for s in self.stops]
        if len(set(ids)) != len(ids):
            raise ValueError("stop ids must be unique")

    @property
    def depot_by_id(self) -> dict[str, Depot]:
        return {d.id: d for d in self.depots}

    @property
    def stop_by_id(self) -> dict[str, Stop]:
        return {s.id: s for s in self.stops}

    @property
    def vehicle_by_id(self) -> dict[str, Vehicle]:
        return {v.id: v for v in self.vehicles}

    def end_location(self, vehicle: Vehicle) -> int:
        return self.depot_by_id[vehicle.end_depot].location

    def latest_return(self, vehicle: Vehicle) -> int:
        return min(vehicle.return_by, self.depot_by_id[vehicle.end_depot].closes)

    def earliest_departure(self, vehicle: Vehicle) -> int:
        if vehicle.start_depot is None:
            return vehicle.available_from
        return max(vehicle.available_from, self.depot_by_id[vehicle.start_depot].opens)


@dataclass(frozen=True, slots=True)
class Route:
    vehicle_id: str
    stop_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SolveStats:
    backend: str
    seconds: float
    objective: int
    """The solver's own objective, in the problem's cost units (the checker recomputes it)."""
    progress: tuple[tuple[float, int], ...] = ()
    """(seconds since start, best objective) each time the best solution improved."""


@dataclass(frozen=True, slots=True)
class RoutingSolution:
    routes: tuple[Route, ...]
    unserved: tuple[str, ...]
    stats: SolveStats

    @property
    def used_routes(self) -> tuple[Route, ...]:
        return tuple(r for r in self.routes if r.stop_ids)


@dataclass(frozen=True, slots=True)
class SolveOptions:
    time_limit: float
    seed: int = 0
    progress: ProgressSink | None = field(default=None, compare=False)


class ProgressSink:
    """Told about each new best solution; the CLI draws a progress bar, tests record it."""

    def started(self, time_limit: float) -> None:
        """Called once before the search."""

    def improved(self, elapsed: float, objective: int) -> None:
        """Called with each new best objective (cost units) and seconds since the start."""

    def finished(self) -> None:
        """Called once after the search."""


def zero_load(width: int) -> Load:
    return (0,) * width


def add_loads(a: Sequence[int], b: Sequence[int]) -> Load:
    return tuple(x + y for x, y in zip(a, b, strict=True))
