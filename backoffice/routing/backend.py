"""The one interface every solver backend implements, how to pick one by name, and the fallback
to OR-Tools for what a backend cannot model."""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

from backoffice.routing.model import ProgressSink, RoutingProblem, RoutingSolution, SolveOptions
from errors import OperationalError, UserError

log = logging.getLogger(__name__)

DEFAULT_BACKEND = "pyvrp"
"""Chosen by ``bench/routes.py``: PyVRP reaches the best-known RC208 cost within 30 s and is
several percent closer to best-known on 1000 customers than the best OR-Tools settings found."""
BACKENDS = ("ortools", "pyvrp")


class NoSolutionFound(OperationalError, RuntimeError):
    """The solver found no plan within its time limit (e.g. a stop that must be served cannot be)."""

    code = "no_solution"


class UnsupportedProblem(UserError):
    """The backend cannot model something the problem asks for."""

    code = "unsupported_problem"


class RoutingBackend(ABC):
    name: ClassVar[str]

    def unsupported(self, problem: RoutingProblem) -> list[str]:
        """What in this problem the backend cannot model; empty when it can solve it as posed."""
        return []

    @abstractmethod
    def solve(self, problem: RoutingProblem, options: SolveOptions) -> RoutingSolution:
        """The best plan found within ``options.time_limit`` seconds."""


def backend_named(name: str) -> RoutingBackend:
    # Imported here so that loading one solver never requires the other.
    if name == "ortools":
        from backoffice.routing.ortools_backend import OrToolsBackend

        return OrToolsBackend()
    if name == "pyvrp":
        from backoffice.routing.pyvrp_backend import PyVrpBackend

        return PyVrpBackend()
    raise ValueError(f"unknown routing backend {name!r} (choose from {', '.join(BACKENDS)})")


@dataclass(frozen=True, slots=True)
class SolveOutcome:
    solution: RoutingSolution
    backend: str
    fallback_reason: str | None


def solve_problem(
    problem: RoutingProblem,
    backend_name: str | None,
    time_limit: float,
    seed: int = 0,
    progress: ProgressSink | None = None,
) -> SolveOutcome:
    """Solve with the named backend (default: the benchmark's choice), or with OR-Tools when that
    backend cannot model the problem. Module-level so that a process pool can run it."""
    name = backend_name or DEFAULT_BACKEND
    backend = backend_named(name)
    fallback_reason: str | None = None
    if reasons := backend.unsupported(problem):
        fallback_reason = f"{name} cannot model {', '.join(reasons)}; planned with OR-Tools"
        log.info(fallback_reason)
        backend = backend_named("ortools")
    solution = backend.solve(problem, SolveOptions(time_limit=time_limit, seed=seed, progress=progress))
    return SolveOutcome(solution, backend.name, fallback_reason)


class ProgressTracker:
    """Keeps the best objective over time and passes improvements to a sink."""

    def __init__(self, sink: ProgressSink | None) -> None:
        self.sink = sink
        self.started_at = time.monotonic()
        self.best: int | None = None
        self.history: list[tuple[float, int]] = []

    def elapsed(self) -> float:
        return time.monotonic() - self.started_at

    def offer(self, objective: int) -> None:
        if self.best is not None and objective >= self.best:
            return
        self.best = objective
        elapsed = round(self.elapsed(), 3)
        self.history.append((elapsed, objective))
        if self.sink is not None:
            self.sink.improved(elapsed, objective)
