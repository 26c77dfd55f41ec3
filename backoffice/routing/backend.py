"""The one interface every solver backend implements, and how to pick one by name."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from typing import ClassVar

from backoffice.routing.model import ProgressSink, RoutingProblem, RoutingSolution, SolveOptions

DEFAULT_BACKEND = "pyvrp"
"""Chosen by ``bench/routes.py``: PyVRP reaches the best-known RC208 cost within 30 s and is
several percent closer to best-known on 1000 customers than the best OR-Tools settings found."""
BACKENDS = ("ortools", "pyvrp")


class NoSolutionFound(RuntimeError):
    """The solver found no plan within its time limit (e.g. a stop that must be served cannot be)."""


class UnsupportedProblem(ValueError):
    """The backend cannot model something the problem asks for."""


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
