"""``run.py routes …``: solve VRPLIB instances, plan and re-plan pick-ups, carbon records.

The composition root (``run.py``) hands in how to open the database, so this module does not
know how the store is started.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from backoffice.routing import vrplib
from backoffice.routing.backend import BACKENDS, DEFAULT_BACKEND, NoSolutionFound, backend_named
from backoffice.routing.demo import demo_pickups
from backoffice.routing.feasibility import check
from backoffice.routing.fleet import CLOCK, FleetError, GeoPoint, Objective, ObjectiveMode, load_fleet
from backoffice.routing.model import SolveOptions
from backoffice.routing.pickups import PickupStore
from backoffice.routing.planner import PlanningError, RoutePlanner, thread_solver
from backoffice.routing.progress import ConsoleProgress
from errors import UserError

OpenDatabase = Callable[[], AbstractAsyncContextManager[AsyncDatabase[dict[str, Any]]]]


class CommandError(UserError):
    """A command line this tool cannot run; the message says why."""

    code = "invalid_command"


def add_routes_commands(commands: Any) -> None:
    routes = commands.add_parser("routes", help="plan return pick-up routes; solve VRPLIB instances")
    sub = routes.add_subparsers(dest="routes_command", metavar="ROUTES_COMMAND", required=True)

    solve = sub.add_parser("solve", help="solve a VRPLIB CVRPTW instance (DIMACS distances)")
    solve.add_argument("--vrplib", type=Path, required=True, metavar="FILE", help="instance (.vrp)")
    solve.add_argument("--time-limit", type=_positive, default=10.0, metavar="SECONDS")
    solve.add_argument("--backend", choices=BACKENDS, default=DEFAULT_BACKEND)
    solve.add_argument("--seed", type=int, default=0)
    solve.add_argument("--json", action="store_true", help='print {"cost", "vehicles", "routes"} only')

    plan = sub.add_parser("plan", help="plan a day's open pick-ups from the store (default: tomorrow)")
    plan.add_argument("--date", help="service day YYYY-MM-DD (default: tomorrow, local time)")
    _solver_options(plan)
    plan.add_argument("--objective", choices=[m.value for m in ObjectiveMode], help="default: the fleet file's")
    plan.add_argument("--co2-price", type=float, metavar="YUAN_PER_KG", help="price of CO2 in priced mode")
    plan.add_argument("--json", action="store_true", help="print the stored plan as JSON")

    seed = sub.add_parser("seed-demo", help="add deterministic demo pick-ups for a day (idempotent)")
    seed.add_argument("--date", help="service day YYYY-MM-DD (default: tomorrow)")
    seed.add_argument("--count", type=int, default=36)
    seed.add_argument("--fleet", type=Path, metavar="FILE", help="fleet file (default: the demo fleet)")

    replan = sub.add_parser("replan", help="re-plan a plan from now on: add/cancel stops, delays, positions")
    replan.add_argument("--plan", help="plan id (default: the latest plan)")
    replan.add_argument("--now", help="HH:MM on the plan's day (default: the local time now)")
    replan.add_argument("--add", action="append", default=[], metavar="PICKUP_ID")
    replan.add_argument("--cancel", action="append", default=[], metavar="PICKUP_ID")
    replan.add_argument("--delay", action="append", default=[], metavar="VEHICLE=MINUTES")
    replan.add_argument("--at", action="append", default=[], metavar="VEHICLE=LAT,LON", help="reported position")
    _solver_options(replan)
    replan.add_argument("--json", action="store_true")

    actual = sub.add_parser("actual", help="record a driven route's carbon (from the odometer or a meter)")
    actual.add_argument("--plan", required=True)
    actual.add_argument("--vehicle", required=True)
    actual.add_argument("--distance-km", type=float, required=True)
    energy = actual.add_mutually_exclusive_group()
    energy.add_argument("--fuel-l", type=float, help="litres of fuel used (diesel vans)")
    energy.add_argument("--kwh", type=float, help="kWh charged (electric vans)")
    actual.add_argument("--fleet", type=Path, metavar="FILE")

    carbon = sub.add_parser("carbon", help="planned vs actual CO2 of a day, and the ledger check")
    carbon.add_argument("--date", help="service day (default: tomorrow)")
    carbon.add_argument("--fleet", type=Path, metavar="FILE")


def _solver_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--time-limit", type=_positive, default=10.0, metavar="SECONDS")
    parser.add_argument("--backend", choices=BACKENDS, help=f"default: {DEFAULT_BACKEND}")
    parser.add_argument("--fleet", type=Path, metavar="FILE", help="fleet file (default: the demo fleet)")


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be a positive number of seconds")
    return value


async def run_routes_command(args: argparse.Namespace, open_database: OpenDatabase, var_dir: Path) -> int:
    try:
        if args.routes_command == "solve":
            return solve_vrplib(args)
        async with open_database() as db:
            return await _with_store(args, db, var_dir)
    except (CommandError, vrplib.VrplibError, FleetError, PlanningError, NoSolutionFound) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def solve_vrplib(args: argparse.Namespace) -> int:
    instance = vrplib.read_instance(args.vrplib)
    problem = vrplib.to_problem(instance)
    progress = ConsoleProgress(cost_scale=vrplib.SCALE, label=f"{instance.name} ({args.backend})")
    solution = backend_named(args.backend).solve(
        problem, SolveOptions(time_limit=args.time_limit, seed=args.seed, progress=progress)
    )
    report = check(problem, solution)
    if not report.feasible:
        raise NoSolutionFound(f"the {args.backend} plan breaks constraints: {'; '.join(report.violations[:5])}")
    routes = vrplib.customer_routes(solution.routes)
    cost = vrplib.dimacs_cost(problem, routes)
    if args.json:
        print(json.dumps({"cost": cost, "vehicles": len(routes), "routes": routes}))
        return 0
    for number, route in enumerate(routes, start=1):
        print(f"Route #{number}: {' '.join(map(str, route))}")
    print(f"Cost {cost:.1f}")
    best = args.vrplib.with_suffix(".sol")
    if best.exists() and (known := vrplib.read_solution(best).cost):
        print(f"best known {known:.1f}, gap {100 * (cost - known) / known:+.2f} %", file=sys.stderr)
    return 0


async def _with_store(args: argparse.Namespace, db: AsyncDatabase[dict[str, Any]], var_dir: Path) -> int:
    fleet = load_fleet(args.fleet)
    store = PickupStore(db)
    progress = ConsoleProgress(cost_scale=1_000_000, label="planning")
    planner = RoutePlanner(store, fleet, var_dir, solver=thread_solver(progress))
    await planner.ensure_indexes()
    command = args.routes_command
    if command == "seed-demo":
        date = args.date or planner.tomorrow()
        created = 0
        for request in demo_pickups(date, args.count):
            _, new = await store.request_pickup(request)
            created += new
        print(f"{created} demo pick-ups added for {date} ({args.count - created} were there already)")
        return 0
    if command == "plan":
        objective = fleet.objective
        if args.objective or args.co2_price is not None:
            objective = Objective(
                mode=ObjectiveMode(args.objective or objective.mode),
                co2_price_per_kg=args.co2_price if args.co2_price is not None else objective.co2_price_per_kg,
            )
        date = args.date or planner.tomorrow()
        plan = await planner.plan_day(date, backend=args.backend, time_limit=args.time_limit, objective=objective)
        _print_plan(plan, planner, args.json)
        return 0
    if command == "replan":
        latest = await store.latest_plan()
        plan_id = args.plan or (latest["_id"] if latest else None)
        if plan_id is None:
            raise CommandError("no plan to re-plan; run `routes plan` first")
        now = args.now or planner.local_clock_now()
        if not _is_clock(now):
            raise CommandError(f"--now {now!r}: expected HH:MM")
        plan = await planner.replan(
            plan_id,
            now=now,
            add=args.add,
            cancel=args.cancel,
            delays_minutes={k: float(v) for k, v in (_pair(d, "--delay") for d in args.delay)},
            positions={k: _point(v) for k, v in (_pair(a, "--at") for a in args.at)},
            backend=args.backend,
            time_limit=args.time_limit,
        )
        _print_plan(plan, planner, args.json)
        return 0
    if command == "actual":
        energy = args.fuel_l if args.fuel_l is not None else args.kwh
        record = await planner.record_actual(args.plan, args.vehicle, distance_km=args.distance_km, energy=energy)
        print(json.dumps(record, ensure_ascii=False))
        return 0
    if command == "carbon":
        report = await planner.carbon_report(args.date or planner.tomorrow())
        print(json.dumps(report, ensure_ascii=False, indent=1))
        return 0 if report["ledger"]["ok"] else 1
    raise CommandError(f"unknown routes command {command}")


def _print_plan(plan: dict[str, Any], planner: RoutePlanner, as_json: bool) -> None:
    if as_json:
        print(json.dumps(plan, ensure_ascii=False))
        return
    totals = plan["totals"]
    print(
        f"plan {plan['_id']} for {plan['date']} (revision {plan['revision']}, {plan['backend']}): "
        f"{totals['vehicles']} vehicles, {totals['stops']} stops, {totals['unserved']} unserved, "
        f"{totals['distance_km']:.1f} km, {totals['co2_kg']:.1f} kg CO2, {totals['cost_yuan']:.0f} yuan"
    )
    if plan["fallback_reason"]:
        print(f"  note: {plan['fallback_reason']}")
    for route in plan["routes"]:
        print(
            f"  {route['vehicle_id']:10} {route['depart']}-{route['return']} {len(route['stops']):3} stops "
            f"{route['distance_km']:7.1f} km  max {route['max_load']['parcels']:3} parcels  "
            f"{route['co2_kg']:6.2f} kg CO2"
        )
    for stop in plan["unserved"]:
        print(f"  unserved {stop['pickup_id']}: {stop['reason']}")
    print(f"  image {planner.png_path(plan['_id'])}")


def _is_clock(text: str) -> bool:
    import re

    return re.match(CLOCK, text) is not None


def _pair(text: str, option: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key or not value:
        raise CommandError(f"{option} {text!r}: expected VEHICLE=VALUE")
    return key, value


def _point(text: str) -> GeoPoint:
    try:
        lat, lon = (float(v) for v in text.split(","))
        return GeoPoint(lat=lat, lon=lon)
    except ValueError as exc:
        raise CommandError(f"--at {text!r}: expected VEHICLE=LAT,LON") from exc
