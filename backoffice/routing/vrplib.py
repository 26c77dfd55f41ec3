"""Read standard VRPLIB CVRPTW instances and solutions (Solomon, Gehring & Homberger).

Numbering follows the ``.sol`` files: the depot is 0 and customers are 1..n in file order.
Distances follow the DIMACS convention: Euclidean, truncated to one decimal; travel time equals
distance; ``SERVICE_TIME`` applies at customers. Internally everything is in integer tenths,
so solver costs are exact and :func:`dimacs_cost` divides by ten once at the end.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backoffice.routing.matrices import dimacs_tenths
from backoffice.routing.model import Depot, Point, Route, RoutingProblem, Stop, Vehicle
from errors import UserError

SCALE = 10
"""Integer units per instance unit: tenths, the precision of DIMACS costs."""
DEPOT_ID = "depot"


class VrplibError(UserError):
    """A file this reader cannot understand; the message says where."""

    code = "invalid_vrplib_file"


@dataclass(frozen=True, slots=True)
class VrplibInstance:
    name: str
    capacity: int
    vehicles: int
    coordinates: tuple[tuple[float, float], ...]
    """Depot first, then customers 1..n in file order."""
    demands: tuple[int, ...]
    time_windows: tuple[tuple[float, float], ...]
    service_times: tuple[float, ...]

    @property
    def customers(self) -> int:
        return len(self.coordinates) - 1


@dataclass(frozen=True, slots=True)
class VrplibSolution:
    routes: tuple[tuple[int, ...], ...]
    cost: float | None


_SECTIONS = {
    "NODE_COORD_SECTION",
    "DEMAND_SECTION",
    "TIME_WINDOW_SECTION",
    "SERVICE_TIME_SECTION",
    "DEPOT_SECTION",
    "EDGE_WEIGHT_SECTION",
    "EOF",
}


def read_instance(path: Path) -> VrplibInstance:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise VrplibError(f"{path}: no such file") from exc
    specs: dict[str, str] = {}
    sections: dict[str, list[list[str]]] = {}
    current: str | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        head = line.split()[0].rstrip(":")
        if head in _SECTIONS:
            current = head
            sections.setdefault(head, [])
            if head == "EOF":
                break
            continue
        if current is None:
            if ":" not in line:
                raise VrplibError(f"{path}:{number}: expected 'KEY : VALUE', got {line!r}")
            key, value = line.split(":", 1)
            specs[key.strip().upper()] = value.strip()
        else:
            sections[current].append(line.split())
    return _instance(path, specs, sections)


def _instance(path: Path, specs: dict[str, str], sections: dict[str, list[list[str]]]) -> VrplibInstance:
    edge_type = specs.get("EDGE_WEIGHT_TYPE", "EUC_2D")
    if edge_type != "EUC_2D" or "EDGE_WEIGHT_SECTION" in sections:
        raise VrplibError(f"{path}: only EUC_2D instances are supported (got {edge_type})")
    for needed in ("NODE_COORD_SECTION", "DEMAND_SECTION"):
        if needed not in sections:
            raise VrplibError(f"{path}: missing {needed}")
    try:
        dimension = int(specs.get("DIMENSION", len(sections["NODE_COORD_SECTION"])))
        capacity = int(specs["CAPACITY"])
        coords = _by_node(sections["NODE_COORD_SECTION"], dimension, 2, path, "NODE_COORD_SECTION")
        demands = _by_node(sections["DEMAND_SECTION"], dimension, 1, path, "DEMAND_SECTION")
        default_service = float(specs.get("SERVICE_TIME", 0))
        if "SERVICE_TIME_SECTION" in sections:
            service = _by_node(sections["SERVICE_TIME_SECTION"], dimension, 1, path, "SERVICE_TIME_SECTION")
        else:
            service = [[default_service] for _ in range(dimension)]
        if "TIME_WINDOW_SECTION" in sections:
            windows = _by_node(sections["TIME_WINDOW_SECTION"], dimension, 2, path, "TIME_WINDOW_SECTION")
        else:
            windows = [[0.0, float("inf")] for _ in range(dimension)]
        depots = [int(row[0]) for row in sections.get("DEPOT_SECTION", [["1"]]) if int(row[0]) > 0]
    except KeyError as exc:
        raise VrplibError(f"{path}: missing {exc.args[0]}") from exc
    except ValueError as exc:
        raise VrplibError(f"{path}: {exc}") from exc
    if len(depots) != 1:
        raise VrplibError(f"{path}: exactly one depot is supported (got {len(depots)})")
    depot = depots[0] - 1
    order = [depot] + [i for i in range(dimension) if i != depot]
    vehicles = int(specs.get("VEHICLES", dimension - 1))
    return VrplibInstance(
        name=specs.get("NAME", path.stem),
        capacity=capacity,
        vehicles=vehicles,
        coordinates=tuple((coords[i][0], coords[i][1]) for i in order),
        demands=tuple(int(demands[i][0]) for i in order),
        time_windows=tuple((windows[i][0], windows[i][1]) for i in order),
        service_times=tuple(0.0 if i == depot else service[i][0] for i in order),
    )


def _by_node(rows: list[list[str]], dimension: int, width: int, path: Path, section: str) -> list[list[float]]:
    values: list[list[float] | None] = [None] * dimension
    for row in rows:
        if len(row) != width + 1:
            raise VrplibError(f"{path}: {section}: expected {width + 1} fields, got {' '.join(row)!r}")
        node = int(row[0])
        if not 1 <= node <= dimension:
            raise VrplibError(f"{path}: {section}: node {node} outside 1..{dimension}")
        values[node - 1] = [float(v) for v in row[1:]]
    missing = [i + 1 for i, v in enumerate(values) if v is None]
    if missing:
        raise VrplibError(f"{path}: {section}: no entry for node {missing[0]}")
    return [v for v in values if v is not None]


def read_solution(path: Path) -> VrplibSolution:
    routes: list[tuple[int, ...]] = []
    cost: float | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if match := re.match(r"\s*Route\s*#\d+\s*:(.*)", line, re.IGNORECASE):
            routes.append(tuple(int(v) for v in match.group(1).split()))
        elif match := re.match(r"\s*Cost\s+([-+0-9.eE]+)", line, re.IGNORECASE):
            cost = float(match.group(1))
    return VrplibSolution(routes=tuple(routes), cost=cost)


def to_problem(instance: VrplibInstance) -> RoutingProblem:
    """The instance in integer tenths; stop ids are the customer numbers as strings."""
    distance = dimacs_tenths(instance.coordinates)
    depot_open, depot_close = instance.time_windows[0]
    depot = Depot(id=DEPOT_ID, location=0, opens=_tenths(depot_open), closes=_tenths(depot_close))
    stops = tuple(
        Stop(
            id=str(customer),
            location=customer,
            pickup=(0,),
            delivery=(instance.demands[customer],),
            service_time=_tenths(instance.service_times[customer]),
            ready=_tenths(instance.time_windows[customer][0]),
            due=_tenths(instance.time_windows[customer][1]),
        )
        for customer in range(1, len(instance.coordinates))
    )
    vehicles = tuple(
        Vehicle(
            id=f"v{number}",
            capacity=(instance.capacity,),
            start_location=0,
            end_depot=DEPOT_ID,
            start_depot=DEPOT_ID,
            available_from=depot.opens,
            return_by=depot.closes,
            distance_cost=1,
        )
        for number in range(1, instance.vehicles + 1)
    )
    return RoutingProblem(
        name=instance.name,
        dimensions=("demand",),
        distance=distance,
        duration=distance.copy(),
        points=tuple(Point(x, y) for x, y in instance.coordinates),
        depots=(depot,),
        stops=stops,
        vehicles=vehicles,
    )


def _tenths(value: float) -> int:
    if value == float("inf"):
        return 2**40
    return round(value * SCALE)


def dimacs_cost(problem: RoutingProblem, routes: list[list[int]]) -> float:
    """Total truncated-Euclidean length of routes given as customer numbers (depot 0)."""
    total = 0
    for route in routes:
        path = [0, *route, 0]
        total += int(np.sum(problem.distance[path[:-1], path[1:]]))
    return total / SCALE


def customer_routes(routes: tuple[Route, ...]) -> list[list[int]]:
    """Non-empty routes as ``.sol`` customer numbers."""
    return [[int(stop_id) for stop_id in route.stop_ids] for route in routes if route.stop_ids]
