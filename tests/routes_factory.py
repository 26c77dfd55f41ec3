"""Small routing problems the route-planning tests build for themselves (seeded, so repeatable)."""

from __future__ import annotations

import random
from pathlib import Path

from backoffice.routing.matrices import dimacs_tenths
from backoffice.routing.model import Depot, Point, RoutingProblem, Stop, Vehicle


def write_vrplib(path: Path, customers: int, *, seed: int = 1, capacity: int = 60, vehicles: int = 6) -> Path:
    """A Solomon-style CVRPTW instance in VRPLIB format (depot is node 1, service time 10)."""
    rng = random.Random(seed)
    coords = [(50, 50)] + [(rng.randrange(0, 101), rng.randrange(0, 101)) for _ in range(customers)]
    demands = [0] + [rng.randrange(5, 21) for _ in range(customers)]
    windows = [(0, 1000)]
    for x, y in coords[1:]:
        reach = int(((x - 50) ** 2 + (y - 50) ** 2) ** 0.5) + 1
        start = rng.randrange(reach, 600)
        windows.append((start, start + rng.randrange(120, 300)))
    lines = [
        f"NAME : gen{customers}",
        "TYPE : CVRPTW",
        f"DIMENSION : {customers + 1}",
        f"VEHICLES : {vehicles}",
        f"CAPACITY : {capacity}",
        "SERVICE_TIME : 10",
        "EDGE_WEIGHT_TYPE : EUC_2D",
        "NODE_COORD_SECTION",
        *(f"{i + 1} {x} {y}" for i, (x, y) in enumerate(coords)),
        "DEMAND_SECTION",
        *(f"{i + 1} {d}" for i, d in enumerate(demands)),
        "TIME_WINDOW_SECTION",
        *(f"{i + 1} {a} {b}" for i, (a, b) in enumerate(windows)),
        "DEPOT_SECTION",
        "1",
        "-1",
        "EOF",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def pickup_problem(
    stops: int = 14,
    *,
    seed: int = 7,
    handling_capacity: int | None = None,
    exchanges: bool = True,
    penalty: int | None = 5_000,
) -> RoutingProblem:
    """Two depots, a mixed fleet (cheap small vans, dear big ones), pick-ups with windows and some
    exchange deliveries; two dimensions (parcels, kg). Distances in tenths, times equal distances."""
    rng = random.Random(seed)
    coords = [(20.0, 50.0), (80.0, 50.0)] + [(rng.uniform(0, 100), rng.uniform(0, 100)) for _ in range(stops)]
    matrix = dimacs_tenths(coords)
    problem_stops = []
    for number in range(stops):
        start = rng.randrange(0, 3000)
        exchange = exchanges and number % 4 == 0
        problem_stops.append(
            Stop(
                id=f"s{number + 1}",
                location=2 + number,
                pickup=(rng.randrange(1, 4), rng.randrange(5, 40)),
                delivery=(1, 15) if exchange else (0, 0),
                service_time=50,
                ready=start,
                due=start + rng.randrange(800, 2500),
                penalty=penalty,
            )
        )
    vehicles = []
    for depot_number, depot_id in enumerate(("west", "east")):
        for kind, capacity, rate, fixed in (("small", (8, 120), 2, 300), ("big", (14, 250), 3, 500)):
            vehicles.append(
                Vehicle(
                    id=f"{depot_id}-{kind}",
                    capacity=capacity,
                    start_location=depot_number,
                    start_depot=depot_id,
                    end_depot=depot_id,
                    available_from=0,
                    return_by=6000,
                    distance_cost=rate,
                    fixed_cost=fixed,
                )
            )
    return RoutingProblem(
        name=f"pickups{stops}",
        dimensions=("parcels", "kg"),
        distance=matrix,
        duration=matrix.copy(),
        points=tuple(Point(x, y) for x, y in coords),
        depots=(
            Depot("west", 0, 0, 6000, handling_capacity),
            Depot("east", 1, 0, 6000, handling_capacity),
        ),
        stops=tuple(problem_stops),
        vehicles=tuple(vehicles),
    )
