"""Settings of the shop: its time zone and its after-sales rules."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from configuration import SettingsError, setting


@dataclass(frozen=True, slots=True)
class ShopSettings:
    """The shop: the time zone every date is shown and read in, and the rules the flows apply."""

    title: ClassVar[str] = "Shop"
    timezone: str = setting(
        "Asia/Shanghai",
        env="SHOP_TIMEZONE",
        help="the shop's time zone: what 今天, 明天 and 周六 mean, and how every date is shown",
    )
    aftersales_policy_path: Path | None = setting(
        None,
        env="AFTERSALES_POLICY",
        help="after-sales rules (return windows, excluded categories, automatic limits …)",
        default_text="shop/aftersales_policy.yml",
    )

    def validate(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise SettingsError(
                f"SHOP_TIMEZONE {self.timezone!r} is not a time zone", variable="SHOP_TIMEZONE"
            ) from exc
