"""Geocoding: an address to coordinates, marked with how precise they are.

:class:`Geocoder` is the interface (a map provider's street-level API fits behind it). The
default, :class:`OfflineDistrictGeocoder`, works offline: ``cpca`` reads the province, city and
district out of a free-text Chinese address and gives the district's adcode; ``geotool-cn``
(GeoToolCN) gives that region's centre (WGS-84). So a pick-up in 上海市闵行区莘庄镇… is placed at
闵行区's centre, precision ``district`` — coarse for routing a van to the door, enough to plan the
day and show the dispatcher roughly where; an address naming only a city gets ``city``.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol


class Precision(StrEnum):
    ROOFTOP = "rooftop"
    STREET = "street"
    DISTRICT = "district"
    CITY = "city"
    PROVINCE = "province"


@dataclass(frozen=True, slots=True)
class Geocode:
    lat: float
    lon: float
    precision: Precision
    adcode: str | None
    region: str
    """What the point stands for, e.g. 上海市闵行区."""
    source: str


class Geocoder(Protocol):
    async def geocode(self, address: str) -> Geocode | None:
        """Coordinates of the address, or None when it names no place this geocoder knows."""
        ...


_MUNICIPAL = ("市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划")


class OfflineDistrictGeocoder:
    """District centres from the data that ships with ``cpca`` and ``geotool-cn`` (no network)."""

    source = "offline-district"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tool: Any = None

    def _geotool(self) -> Any:
        with self._lock:
            if self._tool is None:
                from GeoToolCN import GeoTool  # its data loads once (~0.1 s)

                self._tool = GeoTool()
            return self._tool

    def lookup(self, address: str) -> Geocode | None:
        """Synchronous: cpca's first call loads pandas and its tables (under a second)."""
        import cpca

        text = address.strip()[:300]
        if not text:
            return None
        row = cpca.transform([text]).to_dict("records")[0]
        adcode = str(row.get("adcode") or "")
        tool = self._geotool()
        names = [str(row.get(k) or "") for k in ("省", "市", "区")]
        region_name = "".join(n for n in names if n and n not in _MUNICIPAL)
        for code, precision in (
            (adcode, Precision.DISTRICT),
            (adcode[:4] + "00", Precision.CITY),
            (adcode[:2] + "0000", Precision.PROVINCE),
        ):
            if len(code) != 6 or not code.isdigit():
                continue
            region = tool.get_region(code)
            if region is None or region.latitude is None or region.longitude is None:
                continue
            if precision is Precision.DISTRICT and region.level != "district":
                continue
            return Geocode(
                lat=round(float(region.latitude), 6),
                lon=round(float(region.longitude), 6),
                precision=precision,
                adcode=code,
                region=region_name or str(region.name),
                source=self.source,
            )
        return None

    async def geocode(self, address: str) -> Geocode | None:
        return await asyncio.to_thread(self.lookup, address)
