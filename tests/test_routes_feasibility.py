"""The independent checker on hand-computed cases, and both solvers' plans put through it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from backoffice.routing.backend import NoSolutionFound, backend_named
from backoffice.routing.feasibility import check_routes
from backoffice.routing.model import Depot, Point, Route, RoutingProblem, SolveOptions, Stop, Vehicle
from tests.routes_factory import pickup_problem

BACKENDS = ("ortools", "pyvrp")


def line_problem(*, capacity: int = 5, c_ready: int = 400, c_due: int = 450, return_by: int = 1000) -> RoutingProblem:
    """Depot at 0 and stops A, B, C at 10, 20, 30 on a line (distances in tenths: 100 apart)."""
    xs = [0, 10, 20, 30]
    distance = np.array([[abs(a - b) * 10 for b in xs] for a in xs], dtype=np.int64)
    return RoutingProblem(
        name="line",
        dimensions=("parcels",),
        distance=distance,
        duration=distance.copy(),
        points=tuple(Point(x, 0) for x in xs),
        depots=(Depot("d", 0, 0, 2000),),
        stops=(
            Stop("A", 1, pickup=(2,), delivery=(0,), service_time=10, ready=0, due=500),
            Stop("B", 2, pickup=(1,), delivery=(3,), service_time=10, ready=0, due=500),  # an exchange
            Stop("C", 3, pickup=(2,), delivery=(0,), service_time=10, ready=c_ready, due=c_due, penalty=99),
        ),
        vehicles=(
            Vehicle(
                id="v1",
                capacity=(capacity,),
                start_location=0,
                start_depot="d",
                end_depot="d",
                available_from=0,
                return_by=return_by,
                distance_cost=2,
                fixed_cost=50,
            ),
        ),
    )


def test_a_hand_computed_route_is_scheduled_loaded_and_costed_exactly() -> None:
    report = check_routes(line_problem(), (Route("v1", ("A", "B", "C")),), ())
    assert report.feasible, report.violations
    [route] = report.routes
    # Leaves with B's exchange item (3), +2 at A, -3+1 at B, +2 at C.
    assert [v.load_after for v in route.visits] == [(5,), (3,), (5,)]
    assert route.max_load == (5,)
    # Arrives at 100, 210, 320 and waits for C's window to open at 400; back at 410 + 300.
    assert [(v.arrival, v.start, v.departure) for v in route.visits] == [
        (100, 100, 110),
        (210, 210, 220),
        (320, 400, 410),
    ]
    assert route.return_time == 710
    assert route.distance == 600
    assert route.cost == report.cost == 50 + 2 * 600


def test_every_kind_of_violation_is_reported() -> None:
    problem = line_problem(capacity=4, c_ready=0, c_due=300, return_by=600)
    report = check_routes(problem, (Route("v1", ("A", "B", "C")),), ())
    text = " | ".join(report.violations)
    assert "after stop A: parcels 5 exceeds capacity 4" in text
    assert "stop C starts at 320, after its window closes at 300" in text
    assert "returns at 630" in text
    assert len(report.violations) == 4  # over capacity after A and again after C

    twice = check_routes(problem, (Route("v1", ("A", "B", "A")),), ("C",))
    assert any("stop A visited 2 times" in v for v in twice.violations)
    missing = check_routes(problem, (Route("v1", ("A",)),), ("C",))
    assert any("stop B neither visited nor reported unserved" in v for v in missing.violations)
    required = check_routes(problem, (Route("v1", ("C",)),), ("A", "B"))
    assert any("stop A must be served" in v for v in required.violations)
    unknown = check_routes(problem, (Route("v9", ("A", "B", "C")),), ())
    assert any("unknown vehicle v9" in v for v in unknown.violations)


def test_depot_handling_capacity_range_and_allowed_vehicles_are_checked() -> None:
    base = line_problem()
    limited = replace(base, depots=(Depot("d", 0, 0, 2000, handling_capacity=4),))
    report = check_routes(limited, (Route("v1", ("A", "B", "C")),), ())
    assert any("handling capacity 4" in v for v in report.violations)  # 2 + 1 + 2 parcels come in

    short_range = replace(base, vehicles=(replace(base.vehicles[0], max_distance=599),))
    assert any("range 599" in v for v in check_routes(short_range, (Route("v1", ("A", "B", "C")),), ()).violations)

    pinned = replace(
        base, stops=(base.stops[0], replace(base.stops[1], allowed_vehicles=frozenset({"v2"})), base.stops[2])
    )
    assert any("may not be served" in v for v in check_routes(pinned, (Route("v1", ("A", "B", "C")),), ()).violations)


def test_unserved_stops_cost_their_penalty() -> None:
    report = check_routes(line_problem(), (Route("v1", ("A", "B")),), ("C",))
    assert report.feasible
    assert report.penalties == 99
    assert report.cost == 50 + 2 * 400 + 99


@pytest.mark.parametrize("backend", BACKENDS)
def test_solver_plans_pass_the_checker_and_agree_on_cost(backend: str) -> None:
    """Mixed fleet, two depots, windows, exchanges on the same trip: whatever the solver returns
    must be feasible, and its own objective must equal the checker's recomputed cost."""
    problem = pickup_problem(16)
    solution = backend_named(backend).solve(problem, SolveOptions(time_limit=1.0))
    report = check_routes(problem, solution.routes, solution.unserved)
    assert report.feasible, report.violations
    assert solution.stats.objective == report.cost
    assert sorted(s for r in solution.routes for s in r.stop_ids) + sorted(solution.unserved) != []
    assert len(solution.unserved) <= 2
    assert solution.stats.progress and solution.stats.progress[-1][1] == solution.stats.objective


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_stop_no_vehicle_can_reach_in_time_is_left_out_with_its_penalty(backend: str) -> None:
    problem = pickup_problem(8)
    far = replace(problem.stops[0], ready=0, due=5)  # closes before anyone can get there
    problem = replace(problem, stops=(far, *problem.stops[1:]))
    solution = backend_named(backend).solve(problem, SolveOptions(time_limit=0.5))
    assert "s1" in solution.unserved
    report = check_routes(problem, solution.routes, solution.unserved)
    assert report.feasible, report.violations


def test_ortools_honours_depot_handling_capacity_and_pyvrp_says_it_cannot() -> None:
    problem = pickup_problem(14, handling_capacity=9)
    assert backend_named("pyvrp").unsupported(problem) == ["a depot's handling capacity"]
    solution = backend_named("ortools").solve(problem, SolveOptions(time_limit=1.0))
    report = check_routes(problem, solution.routes, solution.unserved)
    assert report.feasible, report.violations
    assert all(count <= 9 for count in report.handled.values())
    assert sum(s.pickup[0] for s in problem.stops) > 2 * 9
    assert solution.unserved, "two depots take 18 parcels in all: some stops must be left out"


def test_a_required_stop_that_cannot_be_served_means_no_plan() -> None:
    problem = pickup_problem(6, penalty=None)
    impossible = replace(problem.stops[0], ready=0, due=5)
    problem = replace(problem, stops=(impossible, *problem.stops[1:]))
    with pytest.raises(NoSolutionFound):
        backend_named("ortools").solve(problem, SolveOptions(time_limit=0.5))
