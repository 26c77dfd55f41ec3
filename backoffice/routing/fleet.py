"""Depots, vehicle types and vehicles, the objective, and the planning assumptions, from JSON.

The shipped ``fleet.json`` describes the demo operation in Shanghai; a real one is passed with
``--fleet FILE`` (or ``ROUTES_FLEET_FILE``). Times are local "HH:MM" on the service day.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from backoffice.routing.emissions import DIESEL_KG_CO2_PER_LITRE, GRID_KG_CO2_PER_KWH, EnergyProfile, EnergyUnit
from errors import UserError

DEFAULT_FLEET_FILE = Path(__file__).resolve().parent / "fleet.json"
CLOCK = r"^([01]\d|2[0-3]):[0-5]\d$"
MICROS = 1_000_000
"""Solver cost units per yuan (or per kg of CO2 when optimising CO2 only)."""


class FleetError(UserError):
    """A fleet file that cannot be used; the message says where and why."""

    code = "invalid_fleet"


def clock_seconds(value: str) -> int:
    hours, minutes = value.split(":")
    return int(hours) * 3600 + int(minutes) * 60


def clock_text(seconds: int) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"


class GeoPoint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class Capacity(BaseModel):
    model_config = ConfigDict(extra="forbid")

    parcels: int = Field(ge=0)
    weight_kg: float = Field(ge=0)
    volume_l: float = Field(ge=0)


class DepotConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    name: str
    location: GeoPoint
    opens: str = Field(pattern=CLOCK)
    closes: str = Field(pattern=CLOCK)
    handling_capacity_parcels: int | None = Field(default=None, ge=0)


class VehicleTypeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    energy_unit: EnergyUnit
    energy_per_km: float = Field(gt=0, description="litres or kWh per km")
    kg_co2_per_unit: float | None = Field(default=None, ge=0, description="default: diesel or grid average")
    cost_per_km: float = Field(ge=0, description="yuan per km: energy, wear, driver time")
    fixed_cost: float = Field(ge=0, description="yuan per vehicle used on the day")
    capacity: Capacity
    range_km: float | None = Field(default=None, gt=0)

    @property
    def energy(self) -> EnergyProfile:
        factor = self.kg_co2_per_unit
        if factor is None:
            factor = DIESEL_KG_CO2_PER_LITRE if self.energy_unit == "l" else GRID_KG_CO2_PER_KWH
        return EnergyProfile(unit=self.energy_unit, per_km=self.energy_per_km, kg_co2_per_unit=factor)


class VehicleConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    type: str
    depot: str
    shift_start: str = Field(pattern=CLOCK)
    shift_end: str = Field(pattern=CLOCK)


class ObjectiveMode(StrEnum):
    COST = "cost"
    CO2 = "co2"
    PRICED = "priced"


class Objective(BaseModel):
    """What the plan minimises: money, CO2, or money with CO2 at a price."""

    model_config = ConfigDict(extra="forbid")

    mode: ObjectiveMode = ObjectiveMode.PRICED
    co2_price_per_kg: float = Field(default=0.1, ge=0, description="yuan per kg, used in priced mode")

    def rate_per_km(self, vehicle_type: VehicleTypeConfig) -> float:
        """Cost units' worth (yuan, or kg in CO2 mode) of one km driven by this type."""
        co2 = vehicle_type.energy.kg_co2_per_km
        if self.mode is ObjectiveMode.CO2:
            return co2
        if self.mode is ObjectiveMode.COST:
            return vehicle_type.cost_per_km
        return vehicle_type.cost_per_km + self.co2_price_per_kg * co2

    def fixed(self, vehicle_type: VehicleTypeConfig) -> float:
        return 0.0 if self.mode is ObjectiveMode.CO2 else vehicle_type.fixed_cost


class Assumptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    speed_kmh: float = Field(default=24.0, gt=0, description="average door-to-door speed in the city")
    detour_factor: float = Field(default=1.35, ge=1, description="road distance / straight-line distance")
    service_minutes: float = Field(default=5.0, ge=0)
    service_minutes_per_parcel: float = Field(default=1.5, ge=0)
    unserved_penalty: float = Field(default=400.0, ge=0, description="yuan (or kg in CO2 mode) per stop left out")
    timezone: str = "Asia/Shanghai"


class Fleet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    depots: list[DepotConfig] = Field(min_length=1)
    vehicle_types: list[VehicleTypeConfig] = Field(min_length=1)
    vehicles: list[VehicleConfig] = Field(min_length=1)
    objective: Objective = Objective()
    assumptions: Assumptions = Assumptions()

    @model_validator(mode="after")
    def _references(self) -> Fleet:
        depots = {d.id for d in self.depots}
        types = {t.id for t in self.vehicle_types}
        for vehicle in self.vehicles:
            if vehicle.depot not in depots:
                raise ValueError(f"vehicle {vehicle.id}: unknown depot {vehicle.depot}")
            if vehicle.type not in types:
                raise ValueError(f"vehicle {vehicle.id}: unknown vehicle type {vehicle.type}")
        ids = [v.id for v in self.vehicles]
        if len(set(ids)) != len(ids):
            raise ValueError("vehicle ids must be unique")
        return self

    def vehicle_type(self, type_id: str) -> VehicleTypeConfig:
        return next(t for t in self.vehicle_types if t.id == type_id)

    def depot(self, depot_id: str) -> DepotConfig:
        return next(d for d in self.depots if d.id == depot_id)


def load_fleet(path: Path | None = None) -> Fleet:
    path = path or DEFAULT_FLEET_FILE
    try:
        return Fleet.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError as exc:
        raise FleetError(f"{path}: no such file") from exc
    except json.JSONDecodeError as exc:
        raise FleetError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from exc
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()]
        raise FleetError(f"{path}: " + "; ".join(problems[:20])) from exc
