"""VRPLIB reading, DIMACS distances, and the ``routes solve`` command's JSON contract."""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import sys
from pathlib import Path

import pytest

from backoffice.routing import vrplib
from backoffice.routing.backend import backend_named
from backoffice.routing.model import SolveOptions
from tests.conftest import REPO_ROOT
from tests.routes_factory import write_vrplib

TINY = """NAME : tiny
COMMENT : a comment line
TYPE : CVRPTW
DIMENSION : 4
VEHICLES : 2
CAPACITY : 10
SERVICE_TIME : 5
EDGE_WEIGHT_TYPE : EUC_2D
NODE_COORD_SECTION
1 0 0
2 1 1
3 5 5
4 3 4
DEMAND_SECTION
1 3
2 4
3 0
4 5
TIME_WINDOW_SECTION
1 0 100
2 10 20
3 0 200
4 30 60
DEPOT_SECTION
3
-1
EOF
"""


def truncated(a: tuple[float, float], b: tuple[float, float]) -> float:
    """DIMACS: Euclidean distance truncated (not rounded) to one decimal."""
    return math.floor(10 * math.dist(a, b)) / 10


def test_reads_an_instance_and_numbers_customers_as_sol_files_do(tmp_path: Path) -> None:
    # The depot is node 3 in this file: customers are the other nodes, renumbered 1..n in file order.
    path = tmp_path / "tiny.vrp"
    path.write_text(TINY, encoding="utf-8")
    instance = vrplib.read_instance(path)
    assert instance.coordinates == ((5, 5), (0, 0), (1, 1), (3, 4))
    assert instance.demands == (0, 3, 4, 5)
    assert instance.service_times == (0, 5, 5, 5)
    assert (instance.capacity, instance.vehicles, instance.customers) == (10, 2, 3)

    problem = vrplib.to_problem(instance)
    assert [s.id for s in problem.stops] == ["1", "2", "3"]
    assert problem.stops[1].ready == 100 and problem.stops[1].due == 200  # tenths
    assert problem.depots[0].closes == 2000
    # sqrt(2) = 1.414… → 1.4; sqrt(50) = 7.071… → 7.0; (0,0)-(3,4) = 5 exactly.
    assert problem.distance[1, 2] == 14
    assert problem.distance[0, 1] == 70
    assert problem.distance[1, 3] == 50
    # Routes 0-1-2-0 and 0-3-0: 7.0 + 1.4 + 5.6 (sqrt(32) = 5.656…) + 2 * 2.2 (sqrt(5) = 2.236…)
    assert vrplib.dimacs_cost(problem, [[1, 2], [3]]) == pytest.approx(7.0 + 1.4 + 5.6 + 4.4)


def test_dimacs_truncation_matches_a_direct_computation_on_a_random_instance(tmp_path: Path) -> None:
    instance = vrplib.read_instance(write_vrplib(tmp_path / "r.vrp", 30, seed=3))
    problem = vrplib.to_problem(instance)
    for i, j in itertools.combinations(range(31), 2):
        expected = truncated(instance.coordinates[i], instance.coordinates[j])
        assert problem.distance[i, j] == problem.distance[j, i] == round(expected * 10)


def test_reads_solutions_and_rejects_what_it_cannot_read(tmp_path: Path) -> None:
    sol = tmp_path / "x.sol"
    sol.write_text("Route #1: 3 1\nRoute #2: 2 \nCost 42.5\n", encoding="utf-8")
    assert vrplib.read_solution(sol) == vrplib.VrplibSolution(routes=((3, 1), (2,)), cost=42.5)

    explicit = tmp_path / "explicit.vrp"
    explicit.write_text("NAME : e\nDIMENSION : 2\nCAPACITY : 1\nEDGE_WEIGHT_TYPE : EXPLICIT\n", encoding="utf-8")
    with pytest.raises(vrplib.VrplibError, match="only EUC_2D"):
        vrplib.read_instance(explicit)
    broken = tmp_path / "broken.vrp"
    broken.write_text(
        "NAME : b\nDIMENSION : 3\nCAPACITY : 1\nNODE_COORD_SECTION\n1 0 0\n2 1 1\nDEMAND_SECTION\n1 0\n2 1\n3 1\n"
    )
    with pytest.raises(vrplib.VrplibError, match="NODE_COORD_SECTION: no entry for node 3"):
        vrplib.read_instance(broken)
    with pytest.raises(vrplib.VrplibError, match="no such file"):
        vrplib.read_instance(tmp_path / "missing.vrp")


@pytest.mark.parametrize("backend", ["ortools", "pyvrp"])
def test_both_backends_find_the_brute_force_optimum_of_a_small_instance(tmp_path: Path, backend: str) -> None:
    """Seven customers, one route, capacity and windows loose: the optimum is the best of 5040 tours."""
    path = write_vrplib(tmp_path / "seven.vrp", 7, seed=11, capacity=1000, vehicles=1)
    lines = path.read_text().splitlines()
    start = lines.index("TIME_WINDOW_SECTION")
    lines[start + 1 : start + 9] = [f"{node} 0 100000" for node in range(1, 9)]
    path.write_text("\n".join(lines) + "\n")
    instance = vrplib.read_instance(path)
    coords = instance.coordinates
    best = min(
        sum(truncated(coords[a], coords[b]) for a, b in itertools.pairwise((0, *tour, 0)))
        for tour in itertools.permutations(range(1, 8))
    )
    problem = vrplib.to_problem(instance)
    solution = backend_named(backend).solve(problem, SolveOptions(time_limit=0.5))
    assert vrplib.dimacs_cost(problem, vrplib.customer_routes(solution.routes)) == pytest.approx(best)


async def run_solve(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(REPO_ROOT / "run.py"),
        "routes",
        "solve",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=REPO_ROOT,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def read_sections(path: Path) -> dict[str, dict[int, list[float]]]:
    """The instance's sections by node number, read directly from the text."""
    sections: dict[str, dict[int, list[float]]] = {}
    current = ""
    for line in path.read_text().splitlines():
        if line.endswith("_SECTION") or line == "EOF":
            current = line
            sections[current] = {}
        elif current and line.strip() and ":" not in line:
            node, *values = line.split()
            sections[current][int(node)] = [float(v) for v in values]
    return sections


@pytest.mark.parametrize("backend", ["ortools", "pyvrp"])
async def test_solve_prints_the_json_contract_with_a_feasible_plan(tmp_path: Path, backend: str) -> None:
    path = write_vrplib(tmp_path / "gen25.vrp", 25, seed=5)
    code, out, err = await run_solve("--vrplib", str(path), "--time-limit", "1", "--json", "--backend", backend)
    assert code == 0, err
    result = json.loads(out)  # stdout is the JSON and nothing else
    assert list(result) == ["cost", "vehicles", "routes"]
    assert "best" in err, "progress goes to stderr"

    # Checked from the file alone, without the project's checker. The depot is node 1, so
    # customer k is node k + 1.
    sections = read_sections(path)
    coords = {node - 1: (v[0], v[1]) for node, v in sections["NODE_COORD_SECTION"].items()}
    demand = {node - 1: v[0] for node, v in sections["DEMAND_SECTION"].items()}
    window = {node - 1: (v[0], v[1]) for node, v in sections["TIME_WINDOW_SECTION"].items()}
    routes = result["routes"]
    assert sorted(c for r in routes for c in r) == list(range(1, 26)), "every customer exactly once"
    assert result["vehicles"] == len(routes) <= 6
    total = 0.0
    for route in routes:
        assert sum(demand[c] for c in route) <= 60
        time, here = 0.0, 0
        for customer in route:
            leg = truncated(coords[here], coords[customer])
            total += leg
            time = max(time + leg, window[customer][0])
            assert time <= window[customer][1] + 1e-9, f"customer {customer} served late"
            time += 10
            here = customer
        leg = truncated(coords[here], coords[0])
        total += leg
        assert time + leg <= window[0][1] + 1e-9, "back at the depot after it closes"
    assert result["cost"] == pytest.approx(round(total, 1))


async def test_solve_fails_clearly_on_a_missing_file(tmp_path: Path) -> None:
    code, out, err = await run_solve("--vrplib", str(tmp_path / "nope.vrp"), "--time-limit", "1", "--json")
    assert code == 2 and out == ""
    assert err.startswith("error:") and "no such file" in err
