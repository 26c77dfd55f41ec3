"""Settings of the downstream systems: where the payment centre, the warehouse and the courier
tracking service are, the secrets their callbacks are signed with, and the embedded stand-ins
that take their place when no address is set."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from configuration import SettingsError, setting


@dataclass(frozen=True, slots=True)
class DownstreamSettings:
    """The payment centre, warehouse and courier tracking the after-sales requests go to (`docs/downstream.md`)."""

    title: ClassVar[str] = "Downstream systems"
    payment_url: str | None = setting(
        None,
        env="PAYMENT_CENTRE_URL",
        help="the payment centre's refund API; unset: an embedded stand-in on loopback",
        default_text="unset: embedded stand-in",
    )
    payment_secret: str | None = setting(
        None, env="PAYMENT_CENTRE_SECRET", secret=True, help="shared HMAC secret of its requests and callbacks"
    )
    warehouse_url: str | None = setting(
        None,
        env="WAREHOUSE_URL",
        help="the warehouse (WMS) API; unset: an embedded stand-in on loopback",
        default_text="unset: embedded stand-in",
    )
    warehouse_secret: str | None = setting(
        None, env="WAREHOUSE_SECRET", secret=True, help="shared HMAC secret of its requests and callbacks"
    )
    courier_url: str | None = setting(
        None,
        env="COURIER_URL",
        help="the courier tracking / pick-up API (subscribe and push); unset: an embedded stand-in on loopback",
        default_text="unset: embedded stand-in",
    )
    courier_secret: str | None = setting(
        None, env="COURIER_SECRET", secret=True, help="shared HMAC secret of its requests and pushes"
    )
    courier_key: str = setting("aftersales", env="COURIER_KEY", help="the shop's customer key at the courier API")
    callback_base_url: str | None = setting(
        None,
        env="DOWNSTREAM_CALLBACK_BASE_URL",
        help="where the systems send their callbacks (`…/downstream/<system>/…` is appended)",
        default_text="PUBLIC_BASE_URL, else http://GATEWAY_HOST:GATEWAY_PORT",
    )
    window_seconds: float = setting(
        300.0,
        env="DOWNSTREAM_CALLBACK_WINDOW_SECONDS",
        minimum=1,
        help="a callback whose signed timestamp is further from now than this is refused (401 `stale_timestamp`)",
    )
    sweep_seconds: float = setting(
        5.0,
        env="DOWNSTREAM_SWEEP_SECONDS",
        minimum=0,
        help="how often each gateway process sends what is due to the systems and retries unfinished callbacks "
        "(new work also wakes it at once); `0`: only when woken",
    )
    standin_pace_seconds: float = setting(
        0.0,
        env="DOWNSTREAM_STANDIN_PACE_SECONDS",
        minimum=0,
        help="the embedded stand-ins report each next step by themselves after this many seconds (refund paid, "
        "courier assigned → collected, goods received → checked, parcel sent → signed); `0`: only when a test tells "
        "them (`make run` uses 20)",
    )

    def validate(self) -> None:
        for name, url, secret in (
            ("PAYMENT_CENTRE", self.payment_url, self.payment_secret),
            ("WAREHOUSE", self.warehouse_url, self.warehouse_secret),
            ("COURIER", self.courier_url, self.courier_secret),
        ):
            if url and not secret:
                raise SettingsError(
                    f"{name}_URL is set but {name}_SECRET is not: its callbacks could not be verified",
                    variable=f"{name}_SECRET",
                )
