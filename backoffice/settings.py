"""Settings of the backoffice: staff bootstrap, the sweep, route planning."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from configuration import setting


@dataclass(frozen=True, slots=True)
class BackofficeSettings:
    """Tickets, staff and the agent API."""

    title: ClassVar[str] = "Backoffice"
    admin_token: str | None = setting(
        None,
        env="BACKOFFICE_ADMIN_TOKEN",
        secret=True,
        help="an `admin` staff account that signs in to `/api/backoffice/…` with this token (first start of a new "
        "installation)",
    )
    agent_api_token: str | None = setting(
        None,
        env="AGENT_API_TOKEN",
        secret=True,
        help="a service token for integrations on `/api/agent/…` (they name the agent in the body); staff sign in "
        "with their own tokens or the console",
    )
    sweep_seconds: float = setting(
        60.0,
        env="BACKOFFICE_SWEEP_SECONDS",
        minimum=0,
        help="how often each gateway process runs the SLA / assignment / auto-close sweep; `0` turns it off",
    )
    fleet_file: Path | None = setting(
        None,
        env="ROUTES_FLEET_FILE",
        help="warehouses and vans for return pick-up route planning",
        default_text="backoffice/routing/fleet.json",
    )
    autoplan: bool = setting(
        True,
        env="ROUTES_AUTOPLAN",
        help="put booked pick-ups on their day's route plan by themselves once geocoded (a new plan for a later "
        "day, today's re-planned from now)",
    )
    autoplan_delay_seconds: float = setting(
        30.0,
        env="ROUTES_AUTOPLAN_DELAY_SECONDS",
        minimum=0,
        help="wait until no new pick-up came in for a day this long before planning it (bookings come in bursts)",
    )
    autoplan_time_limit: float = setting(
        5.0, env="ROUTES_AUTOPLAN_TIME_LIMIT_SECONDS", minimum=0.1, help="solver time for an automatic plan"
    )
    pickup_rebook_limit: int = setting(
        2,
        env="PICKUP_REBOOK_LIMIT",
        minimum=0,
        help="a failed pick-up is rebooked for the next day this many times; after that a person takes over",
    )
