"""Return pick-up route planning: vehicles with capacities, customers' time windows, return
warehouses, CO2 per route, and re-planning during the day.

Owns the solver-neutral model (``model``), the VRPLIB reader (``vrplib``), the matrices, two
solver backends behind one interface (``backend``, ``ortools_backend``, ``pyvrp_backend``), the
independent feasibility checker, CO2 arithmetic (``emissions``), re-planning (``replan``), the
fleet file (``fleet``), a day's problem (``day``), the stored plan (``plan_document``) and its
image (``plot``), the pick-up and plan collections (``pickups``), demo pick-ups, the ``routes``
commands (``cli``) and the planner that ties them together; carbon records go to the
hash-chained ledger (``backoffice.ledger``).

Must not know channels, NLU, dialogue or HTTP: the gateway serves it, and the self-service
return flow hands it approved pick-ups through :meth:`PickupStore.request_pickup`.
"""

from backoffice.routing.backend import DEFAULT_BACKEND, NoSolutionFound, RoutingBackend, backend_named
from backoffice.routing.model import Route, RoutingProblem, RoutingSolution, SolveOptions
from backoffice.routing.pickups import Pickup, PickupRequest, PickupStatus, PickupStore

__all__ = [
    "DEFAULT_BACKEND",
    "NoSolutionFound",
    "Pickup",
    "PickupRequest",
    "PickupStatus",
    "PickupStore",
    "Route",
    "RoutingBackend",
    "RoutingProblem",
    "RoutingSolution",
    "SolveOptions",
    "backend_named",
]
