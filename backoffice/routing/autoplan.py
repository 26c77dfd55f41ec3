"""The day's plan includes the bot's pick-ups by itself.

Once a booked pick-up has coordinates (``downstream``'s geocoder), :class:`AutoPlanner` puts it on
its day's plan: a day with no plan yet, or a later day, is planned afresh (the new plan supersedes
the old one); today's plan is re-planned from the current time with the new pick-ups added, so
vans already on the road keep what they have done. It waits until no new pick-up for the day has
come in for ``delay_seconds`` (bookings come in bursts), and a failed pick-up the courier rebooked
for another day is new on that day's plan. The dispatcher's own plans (``/api/routes/…``) are
untouched otherwise; one gateway process plans at a time (a lease).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from backoffice.routing.pickups import Pickup, PickupStore
from backoffice.routing.planner import PlanningError, RoutePlanner
from store.leases import Leases

log = logging.getLogger(__name__)

NOT_GEOCODED = "address not geocoded"
LEASE = "routes:autoplan"


def planned_ids(plan: dict[str, Any] | None) -> set[str]:
    """Pick-ups a plan has dealt with: on a route, or left out for a reason other than coordinates."""
    if plan is None or plan.get("status") == "superseded":
        return set()
    found = {str(s["pickup_id"]) for r in plan.get("routes", []) for s in r.get("stops", [])}
    found |= {str(u["pickup_id"]) for u in plan.get("unserved", []) if u.get("reason") != NOT_GEOCODED}
    return found


class AutoPlanner:
    def __init__(
        self,
        planner: Callable[[], Awaitable[RoutePlanner]],
        pickups: PickupStore,
        *,
        timezone: str,
        delay_seconds: float = 30.0,
        time_limit: float = 5.0,
        leases: Leases | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.planner = planner
        self.pickups = pickups
        self.zone = ZoneInfo(timezone)
        self.delay_seconds = delay_seconds
        self.time_limit = time_limit
        self.leases = leases
        self.clock = clock
        self._waiting: dict[tuple[str, frozenset[str]], float] = {}
        self.plans_made: list[str] = []

    async def due(self) -> dict[str, list[Pickup]]:
        """Per day (today or later): the located open pick-ups its current plan lacks."""
        today = datetime.now(self.zone).date().isoformat()
        days: dict[str, list[Pickup]] = {}
        for pickup in await self.pickups.open_all():
            if pickup.location is not None and pickup.date >= today:
                days.setdefault(pickup.date, []).append(pickup)
        missing: dict[str, list[Pickup]] = {}
        for day, group in days.items():
            known = planned_ids(await self.pickups.latest_plan(day))
            new = [p for p in group if p.pickup_id not in known]
            if new:
                missing[day] = new
        return missing

    async def run_due(self) -> list[str]:
        """Plan the days that need it; the new plans' ids."""
        if self.leases is not None and not await self.leases.try_acquire(LEASE, max(60.0, 4 * self.time_limit)):
            return []
        made: list[str] = []
        now = self.clock()
        missing = await self.due()
        for key in [k for k in self._waiting if k[0] not in missing]:
            del self._waiting[key]
        for day, new in missing.items():
            key = (day, frozenset(p.pickup_id for p in new))
            first = self._waiting.setdefault(key, now)
            for other in [k for k in self._waiting if k[0] == day and k != key]:
                del self._waiting[other]  # a new booking restarts the day's wait
            if now - first < self.delay_seconds:
                continue
            try:
                plan = await self._plan(day, new)
            except PlanningError as exc:
                log.info("automatic plan for %s not made: %s", day, exc)
                continue
            del self._waiting[key]
            made.append(str(plan["_id"]))
            log.info("planned %s: %d new pick-ups (plan %s)", day, len(new), plan["_id"])
        self.plans_made += made
        return made

    async def _plan(self, day: str, new: list[Pickup]) -> dict[str, Any]:
        planner = await self.planner()
        latest = await planner.store.latest_plan(day)
        local = datetime.now(self.zone)
        if latest is not None and latest.get("status") != "superseded" and day == local.date().isoformat():
            return await planner.replan(
                str(latest["_id"]), now=local.strftime("%H:%M"), add=[p.pickup_id for p in new],
                time_limit=self.time_limit,
            )  # fmt: skip
        return await planner.plan_day(day, time_limit=self.time_limit)
