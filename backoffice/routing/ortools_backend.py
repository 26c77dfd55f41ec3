"""Google OR-Tools routing, configured as well as the benchmark could make it.

The model: one node per start/end location and one per stop; arc costs, travel times and loads
come from integer matrices registered once (no Python callback per arc); a time dimension with
waiting slack and a service time folded into each arc out of a stop; one load dimension per
capacity measure (two when pick-ups and exchange deliveries share a trip); a range dimension
when a vehicle has one; fixed vehicle costs; a disjunction with a penalty for each stop that may
be left unserved; a linear constraint for each depot's handling capacity.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from ortools.constraint_solver import pywrapcp, routing_enums_pb2
from ortools.util import optional_boolean_pb2

from backoffice.routing.backend import NoSolutionFound, ProgressTracker, RoutingBackend
from backoffice.routing.model import (
    IntMatrix,
    Route,
    RoutingProblem,
    RoutingSolution,
    SolveOptions,
    SolveStats,
    Vehicle,
    zero_load,
)

log = logging.getLogger(__name__)

FIRST_SOLUTION = routing_enums_pb2.FirstSolutionStrategy
METAHEURISTIC = routing_enums_pb2.LocalSearchMetaheuristic
LARGE = 300
"""Stops above which an instance is searched with the settings for large instances."""
SLOW_LNS_OPERATORS = (
    "use_global_cheapest_insertion_path_lns",
    "use_local_cheapest_insertion_path_lns",
    "use_relocate_path_global_cheapest_insertion_insert_unperformed",
    "use_global_cheapest_insertion_visit_types_lns",
    "use_local_cheapest_insertion_visit_types_lns",
)


@dataclass(frozen=True, slots=True)
class OrToolsSettings:
    """Search settings; the defaults are the best combination ``bench/routes.py`` found."""

    first_solution: str | None = None
    """None: savings up to ``LARGE`` stops (best start on RC208), parallel cheapest insertion
    beyond (savings opens far too many routes on 1000-customer instances)."""
    metaheuristic: str = "GUIDED_LOCAL_SEARCH"
    guided_local_search_lambda: float = 0.2
    neighbors_ratio: float = 1.0
    """Share of the nearest nodes local-search operators consider (1.0 = all)."""
    min_neighbors: int = 1
    full_propagation: bool = False
    iterated_local_search: bool = False
    ruin: str = "sisr"
    """Iterated local search's ruin step: ``sisr``, ``random_walk`` or ``spatially_close_routes``."""
    ruined_visits: int = 10
    extra_operators: tuple[str, ...] = ()
    disabled_operators: tuple[str, ...] | None = None
    """None: the insertion-heuristic LNS operators are off above ``LARGE`` stops. On 1000 stops a
    single one of their moves can run for tens of seconds past the time limit (C1_10_1: 202 s
    for 120 s), and without them the benchmark's costs were the same or better."""
    """Local-search operators to switch on beyond OR-Tools' defaults, e.g. ``use_or_opt``."""
    trim_fleet: bool = True
    """Search with the vehicles a first solution used plus spares, not the whole identical fleet."""
    spare_share: float = 0.1
    log_search: bool = False
    options: dict[str, Any] = field(default_factory=dict)


class OrToolsBackend(RoutingBackend):
    name = "ortools"

    def __init__(self, settings: OrToolsSettings | None = None) -> None:
        self.settings = settings or OrToolsSettings()

    def solve(self, problem: RoutingProblem, options: SolveOptions) -> RoutingSolution:
        tracker = ProgressTracker(options.progress)
        if options.progress is not None:
            options.progress.started(options.time_limit)
        try:
            return self._solve(problem, options, tracker)
        finally:
            if options.progress is not None:
                options.progress.finished()

    def _solve(self, problem: RoutingProblem, options: SolveOptions, tracker: ProgressTracker) -> RoutingSolution:
        initial: list[list[int]] | None = None
        full_fleet = problem.vehicles
        if self.settings.trim_fleet and len(problem.vehicles) > len(_identical_groups(problem.vehicles)):
            # Every vehicle, used or not, is a start and an end node that OR-Tools' operators try
            # next to every stop; with 250 identical vehicles for 1000 stops that dominates the
            # search. Build a first solution with the whole fleet, then search with the vehicles
            # it used plus a few spares of each kind (identical vehicles are interchangeable).
            first = _Model(problem)
            first_params = self._parameters(options.time_limit, len(problem.stops))
            first_params.solution_limit = 1
            assignment = first.routing.SolveWithParameters(first_params)
            if assignment is None:
                raise NoSolutionFound(f"OR-Tools found no first plan in {options.time_limit:g} s")
            routes = first.routes(assignment)
            used = {v.id for v, r in zip(problem.vehicles, routes, strict=True) if r}
            kept = _trimmed_fleet(problem, used, self.settings.spare_share)
            problem = replace(problem, vehicles=kept)
            by_id = dict(zip([v.id for v in full_fleet], routes, strict=True))
            initial = [by_id[v.id] for v in kept]
        model = _Model(problem)
        routing = model.routing

        def on_solution() -> None:
            tracker.offer(int(routing.CostVar().Value()))

        routing.AddAtSolutionCallback(on_solution)
        stops = len(problem.stops)
        # Closing the model (neighbour lists, filters) takes seconds on 1000 stops: close it
        # first, so that the search gets what is left of the time limit.
        routing.CloseModelWithParameters(self._parameters(options.time_limit, stops))
        params = self._parameters(max(0.05, options.time_limit - tracker.elapsed()), stops)
        if initial is not None:
            nodes = [[model.first_stop_node + stop for stop in route] for route in initial]
            start = routing.ReadAssignmentFromRoutes(nodes, True)
            assignment = routing.SolveFromAssignmentWithParameters(start, params) if start else None
        else:
            assignment = routing.SolveWithParameters(params)
        if assignment is None:
            raise NoSolutionFound(f"OR-Tools found no plan in {options.time_limit:g} s (status {routing.status()})")
        solution = model.solution(assignment, tracker)
        used = {r.vehicle_id for r in solution.routes}
        spare = tuple(Route(v.id, ()) for v in full_fleet if v.id not in used)
        return replace(solution, routes=solution.routes + spare)

    def _parameters(self, time_limit: float, stops: int) -> Any:
        settings = self.settings
        params = pywrapcp.DefaultRoutingSearchParameters()
        first = settings.first_solution
        if first is None:
            first = "SAVINGS" if stops <= LARGE else "PARALLEL_CHEAPEST_INSERTION"
        params.first_solution_strategy = getattr(FIRST_SOLUTION, first)
        params.local_search_metaheuristic = getattr(METAHEURISTIC, settings.metaheuristic)
        params.guided_local_search_lambda_coefficient = settings.guided_local_search_lambda
        params.ls_operator_neighbors_ratio = settings.neighbors_ratio
        params.ls_operator_min_neighbors = settings.min_neighbors
        params.use_full_propagation = settings.full_propagation
        params.use_iterated_local_search = settings.iterated_local_search
        params.log_search = settings.log_search
        if settings.iterated_local_search:
            ruin_recreate = params.iterated_local_search_parameters.ruin_recreate_parameters
            strategy = ruin_recreate.ruin_strategies.add()
            if settings.ruin == "sisr":
                strategy.sisr.avg_num_removed_visits = settings.ruined_visits
                strategy.sisr.max_removed_sequence_size = 10
                strategy.sisr.bypass_factor = 0.01
            elif settings.ruin == "random_walk":
                strategy.random_walk.num_removed_visits = settings.ruined_visits
            else:
                strategy.spatially_close_routes.num_ruined_routes = 2
        for operator in settings.extra_operators:
            setattr(params.local_search_operators, operator, optional_boolean_pb2.BOOL_TRUE)
        disabled = settings.disabled_operators
        if disabled is None:
            disabled = SLOW_LNS_OPERATORS if stops > LARGE else ()
        for operator in disabled:
            setattr(params.local_search_operators, operator, optional_boolean_pb2.BOOL_FALSE)
        for name, value in settings.options.items():
            target = params
            *path, last = name.split(".")
            for part in path:
                target = getattr(target, part)
            setattr(target, last, value)
        # OR-Tools' own randomness (LNS, ILS) is seeded through its CP solver; the seed changes
        # nothing for the deterministic GLS default.
        params.time_limit.FromMilliseconds(max(1, int(time_limit * 1000)))
        return params


def _vehicle_kind(vehicle: Vehicle) -> Vehicle:
    return replace(vehicle, id="")


def _identical_groups(vehicles: tuple[Vehicle, ...]) -> dict[Vehicle, list[Vehicle]]:
    groups: dict[Vehicle, list[Vehicle]] = {}
    for vehicle in vehicles:
        groups.setdefault(_vehicle_kind(vehicle), []).append(vehicle)
    return groups


def _trimmed_fleet(problem: RoutingProblem, used: set[str], spare_share: float = 0.1) -> tuple[Vehicle, ...]:
    kept: set[str] = set()
    for members in _identical_groups(problem.vehicles).values():
        in_use = [v for v in members if v.id in used]
        spares = [v for v in members if v.id not in used]
        kept.update(v.id for v in in_use)
        kept.update(v.id for v in spares[: max(2, math.ceil(spare_share * len(in_use)))])
    return tuple(v for v in problem.vehicles if v.id in kept)


class _Model:
    """A :class:`RoutingProblem` as an OR-Tools routing model."""

    def __init__(self, problem: RoutingProblem) -> None:
        self.problem = problem
        depot_by_id = problem.depot_by_id
        vehicles = problem.vehicles
        # Nodes: each distinct start/end location once, then one node per stop (two stops at
        # the same address are still two visits).
        terminals: list[int] = []
        for vehicle in vehicles:
            for location in (vehicle.start_location, depot_by_id[vehicle.end_depot].location):
                if location not in terminals:
                    terminals.append(location)
        self.node_location = np.array(terminals + [s.location for s in problem.stops], dtype=np.int64)
        self.first_stop_node = len(terminals)
        starts = [terminals.index(v.start_location) for v in vehicles]
        ends = [terminals.index(depot_by_id[v.end_depot].location) for v in vehicles]
        self.manager = pywrapcp.RoutingIndexManager(len(self.node_location), len(vehicles), starts, ends)
        self.routing = pywrapcp.RoutingModel(self.manager)

        index = np.ix_(self.node_location, self.node_location)
        self.distance: IntMatrix = problem.distance[index]
        duration: IntMatrix = problem.duration[index]
        self._costs()
        self._time(duration)
        self._loads()
        self._range()
        self._stops()

    def _node_matrix(self, matrix: IntMatrix) -> int:
        """Register a node-by-node matrix, laid out as OR-Tools' routing indexes expect."""
        return int(self.routing.RegisterTransitMatrix(matrix.tolist()))

    def _node_vector(self, values: list[int]) -> int:
        return int(self.routing.RegisterUnaryTransitVector(values))

    def _costs(self) -> None:
        by_rate: dict[int, int] = {}
        for number, vehicle in enumerate(self.problem.vehicles):
            if vehicle.distance_cost not in by_rate:
                by_rate[vehicle.distance_cost] = self._node_matrix(self.distance * vehicle.distance_cost)
            self.routing.SetArcCostEvaluatorOfVehicle(by_rate[vehicle.distance_cost], number)
            self.routing.SetFixedCostOfVehicle(vehicle.fixed_cost, number)

    def _time(self, duration: IntMatrix) -> None:
        problem, routing, manager = self.problem, self.routing, self.manager
        service = np.zeros(len(self.node_location), dtype=np.int64)
        service[self.first_stop_node :] = [s.service_time for s in problem.stops]
        # Service happens at the node the arc leaves, so it is part of that arc's transit time.
        transit = self._node_matrix(duration + service[:, None])
        horizon = int(max([v.return_by for v in problem.vehicles] + [d.closes for d in problem.depots]))
        routing.AddDimension(transit, horizon, horizon, False, "time")
        self.time = routing.GetDimensionOrDie("time")
        for number, stop in enumerate(problem.stops):
            index = manager.NodeToIndex(self.first_stop_node + number)
            self.time.CumulVar(index).SetRange(stop.ready, stop.due)
        for number, vehicle in enumerate(problem.vehicles):
            latest = problem.latest_return(vehicle)
            self.time.CumulVar(routing.Start(number)).SetRange(problem.earliest_departure(vehicle), latest)
            self.time.CumulVar(routing.End(number)).SetRange(0, latest)
            # Leave as late as the first window allows: reported times then show no idle wait.
            routing.AddVariableMaximizedByFinalizer(self.time.CumulVar(routing.Start(number)))
            routing.AddVariableMinimizedByFinalizer(self.time.CumulVar(routing.End(number)))

    def _loads(self) -> None:
        problem, routing = self.problem, self.routing
        terminals = [0] * self.first_stop_node
        width = len(problem.dimensions)
        handling_needed = any(d.handling_capacity is not None for d in problem.depots)
        picked_dimension: Any = None
        for k, name in enumerate(problem.dimensions):
            pickups = terminals + [s.pickup[k] for s in problem.stops]
            deliveries = terminals + [s.delivery[k] for s in problem.stops]
            onboard = [(v.onboard or zero_load(width))[k] for v in problem.vehicles]
            capacities = [v.capacity[k] for v in problem.vehicles]
            if not any(deliveries):
                # Only pick-ups: the load grows from what is on board at the start.
                dimension = self._cumulative(pickups, capacities, f"load_{name}", start=onboard)
                if k == 0:
                    picked_dimension = dimension
            elif not any(pickups) and not any(onboard):
                # Only deliveries: everything is loaded at the depot, so the sum must fit.
                self._cumulative(deliveries, capacities, f"load_{name}", start=None)
            else:
                # Both: the load at departure is what is on board plus every exchange item of
                # the route, which is only known once the route is. A second dimension sums the
                # deliveries, and the start of the net-load dimension is tied to that sum.
                net = self._node_vector([p - d for p, d in zip(pickups, deliveries, strict=True)])
                routing.AddDimensionWithVehicleCapacity(net, 0, capacities, False, f"load_{name}")
                net_dimension = routing.GetDimensionOrDie(f"load_{name}")
                delivered = self._cumulative(deliveries, capacities, f"delivered_{name}", start=None)
                solver = routing.solver()
                for number in range(len(problem.vehicles)):
                    solver.Add(
                        net_dimension.CumulVar(routing.Start(number))
                        == delivered.CumulVar(routing.End(number)) + onboard[number]
                    )
                if k == 0 and handling_needed:
                    picked_dimension = self._cumulative(pickups, [sum(pickups)] * len(capacities), "picked", None)
        if handling_needed and picked_dimension is not None:
            self._handling(
                picked_dimension, onboard_first=[(v.onboard or zero_load(width))[0] for v in problem.vehicles]
            )

    def _cumulative(self, amounts: list[int], capacities: list[int], name: str, start: list[int] | None) -> Any:
        routing = self.routing
        routing.AddDimensionWithVehicleCapacity(self._node_vector(amounts), 0, capacities, start is None, name)
        dimension = routing.GetDimensionOrDie(name)
        if start is not None:
            for number, amount in enumerate(start):
                dimension.CumulVar(routing.Start(number)).SetValue(amount)
        return dimension

    def _handling(self, picked: Any, onboard_first: list[int]) -> None:
        problem, routing = self.problem, self.routing
        solver = routing.solver()
        for depot in problem.depots:
            if depot.handling_capacity is None:
                continue
            ends = [
                picked.CumulVar(routing.End(number)) - picked.CumulVar(routing.Start(number)) + onboard_first[number]
                for number, vehicle in enumerate(problem.vehicles)
                if vehicle.end_depot == depot.id
            ]
            if ends:
                solver.Add(solver.Sum(ends) <= depot.handling_capacity)

    def _range(self) -> None:
        problem, routing = self.problem, self.routing
        if all(v.max_distance is None for v in problem.vehicles):
            return
        limit = int(self.distance.max()) * (len(self.node_location) + 1)
        ranges = [v.max_distance if v.max_distance is not None else limit for v in problem.vehicles]
        routing.AddDimensionWithVehicleCapacity(self._node_matrix(self.distance), 0, ranges, True, "range")

    def _stops(self) -> None:
        problem, routing, manager = self.problem, self.routing, self.manager
        vehicle_number = {v.id: n for n, v in enumerate(problem.vehicles)}
        for number, stop in enumerate(problem.stops):
            index = manager.NodeToIndex(self.first_stop_node + number)
            if stop.penalty is not None:
                routing.AddDisjunction([index], stop.penalty)
            if stop.allowed_vehicles is not None:
                allowed = sorted(vehicle_number[v] for v in stop.allowed_vehicles if v in vehicle_number)
                # -1 keeps "unserved" possible; an empty list then means "only unserved" (unlike
                # SetAllowedVehiclesForIndex, where empty means any vehicle).
                routing.VehicleVar(index).SetValues([-1, *allowed])

    def routes(self, assignment: Any) -> list[list[int]]:
        """Each vehicle's visits as positions in ``problem.stops``."""
        routing, manager = self.routing, self.manager
        result: list[list[int]] = []
        for number in range(len(self.problem.vehicles)):
            nodes: list[int] = []
            index = assignment.Value(routing.NextVar(routing.Start(number)))
            while not routing.IsEnd(index):
                nodes.append(int(manager.IndexToNode(index)) - self.first_stop_node)
                index = assignment.Value(routing.NextVar(index))
            result.append(nodes)
        return result

    def solution(self, assignment: Any, tracker: ProgressTracker) -> RoutingSolution:
        problem, routing, manager = self.problem, self.routing, self.manager
        routes: list[Route] = []
        visited: set[str] = set()
        for number, vehicle in enumerate(problem.vehicles):
            stop_ids: list[str] = []
            index = assignment.Value(routing.NextVar(routing.Start(number)))
            while not routing.IsEnd(index):
                stop = problem.stops[manager.IndexToNode(index) - self.first_stop_node]
                stop_ids.append(stop.id)
                index = assignment.Value(routing.NextVar(index))
            visited.update(stop_ids)
            routes.append(Route(vehicle.id, tuple(stop_ids)))
        objective = int(assignment.ObjectiveValue())
        tracker.offer(objective)
        return RoutingSolution(
            routes=tuple(routes),
            unserved=tuple(s.id for s in problem.stops if s.id not in visited),
            stats=SolveStats(
                backend="ortools",
                seconds=round(tracker.elapsed(), 3),
                objective=objective,
                progress=tuple(tracker.history),
            ),
        )
