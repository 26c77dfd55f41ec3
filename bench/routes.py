"""Route-planning benchmark: each backend's cost, gap to best known, and feasibility.

Solomon RC208 (100 customers) at 30 s and the Gehring & Homberger 1000-customer instances at
120 s, from ``../shared/data/vrp`` (VRPLIB files with best-known ``.sol`` files), DIMACS
convention (Euclidean distances truncated to one decimal). Every plan is put through the
independent checker. The backend with the smaller mean gap should be the default
(``backoffice/routing/backend.py: DEFAULT_BACKEND``); the script says if it is not.

    .venv/bin/python bench/routes.py [--data DIR] [--backends ortools,pyvrp] [--instances RC208:30,...]

Solves run one after another on one core each; on a shared machine compare runs made back to
back (the script prints the CPU steal of the run).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backoffice.routing import vrplib
from backoffice.routing.backend import DEFAULT_BACKEND, backend_named
from backoffice.routing.feasibility import check
from backoffice.routing.model import SolveOptions
from backoffice.routing.progress import ConsoleProgress

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "vrp"
DEFAULT_INSTANCES = "RC208:30,RC2_10_1:120,C1_10_1:120"
TARGETS = {100: 1.0, 1000: 8.0}
"""Gap targets in percent by instance size (issue 10)."""


def cpu_times() -> tuple[int, int]:
    """(steal, total) jiffies from /proc/stat: on a shared VM, steal explains slow runs."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (fields[7] if len(fields) > 7 else 0), sum(fields)


def best_at(progress: tuple[tuple[float, int], ...], seconds: float) -> float | None:
    """The best cost found by ``seconds`` into the solve, in instance units."""
    found = [cost for at, cost in progress if at <= seconds]
    return min(found) / vrplib.SCALE if found else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--backends", default="ortools,pyvrp")
    parser.add_argument("--instances", default=DEFAULT_INSTANCES, help="NAME:SECONDS,...")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rows = []
    load_before = os.getloadavg()[0]
    steal_before, total_before = cpu_times()
    for spec in args.instances.split(","):
        name, seconds = spec.split(":")
        path = args.data / f"{name}.vrp"
        instance = vrplib.read_instance(path)
        problem = vrplib.to_problem(instance)
        best_known = vrplib.read_solution(path.with_suffix(".sol")).cost
        assert best_known is not None, f"{path.with_suffix('.sol')} has no cost"
        for backend in args.backends.split(","):
            progress = ConsoleProgress(cost_scale=vrplib.SCALE, label=f"{name} {backend}")
            started = time.monotonic()
            solution = backend_named(backend).solve(
                problem, SolveOptions(time_limit=float(seconds), seed=args.seed, progress=progress)
            )
            wall = time.monotonic() - started
            report = check(problem, solution)
            cost = vrplib.dimacs_cost(problem, vrplib.customer_routes(solution.routes))
            limit = float(seconds)
            rows.append(
                {
                    "instance": name,
                    "customers": instance.customers,
                    "seconds": limit,
                    "backend": backend,
                    "cost": cost,
                    "best_known": best_known,
                    "gap": 100 * (cost - best_known) / best_known,
                    "routes": len(solution.used_routes),
                    "feasible": report.feasible,
                    "wall": wall,
                    "quarter": best_at(solution.stats.progress, limit / 4),
                    "half": best_at(solution.stats.progress, limit / 2),
                }
            )
    steal_after, total_after = cpu_times()
    steal = 100 * (steal_after - steal_before) / max(1, total_after - total_before)

    print(f"\n{'instance':10} {'n':>5} {'limit':>6} {'backend':8} {'cost':>10} {'best known':>10} {'gap':>8}"
          f" {'routes':>6} {'feasible':>8} {'at 1/4':>9} {'at 1/2':>9} {'wall':>7}")  # fmt: skip
    for r in rows:
        quarter = f"{r['quarter']:9.1f}" if r["quarter"] is not None else f"{'-':>9}"
        half = f"{r['half']:9.1f}" if r["half"] is not None else f"{'-':>9}"
        print(
            f"{r['instance']:10} {r['customers']:5d} {r['seconds']:5.0f}s {r['backend']:8} {r['cost']:10.1f} "
            f"{r['best_known']:10.1f} {r['gap']:+7.2f}% {r['routes']:6d} {'yes' if r['feasible'] else 'NO':>8} "
            f"{quarter} {half} {r['wall']:6.1f}s"
        )
    print(
        f"\n{os.cpu_count()} CPUs, CPU steal during the run {steal:.1f} %, load average "
        f"{load_before:.1f} before and {os.getloadavg()[0]:.1f} after (other work on the machine slows solves)"
    )

    failures = 0
    for r in rows:
        target = TARGETS.get(100 if r["customers"] < 500 else 1000)
        if target is not None and r["gap"] > target:
            print(f"  {r['backend']} misses the {target:g} % target on {r['instance']} ({r['gap']:+.2f} %)")
        failures += not r["feasible"]
    backends = sorted({r["backend"] for r in rows})
    mean_gap = {b: statistics.mean(r["gap"] for r in rows if r["backend"] == b) for b in backends}
    winner = min(mean_gap, key=lambda b: mean_gap[b])
    print("mean gap: " + ", ".join(f"{b} {g:+.2f} %" for b, g in mean_gap.items()) + f" -> default {winner}")
    if len(backends) > 1 and winner != DEFAULT_BACKEND:
        print(f"  DEFAULT_BACKEND is {DEFAULT_BACKEND}: update backoffice/routing/backend.py")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
