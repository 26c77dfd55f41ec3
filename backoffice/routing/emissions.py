"""CO2 as activity times emission factor, and the carbon records the ledger keeps.

Activity is the energy a vehicle uses (litres of fuel or kWh of electricity), estimated from
distance times the vehicle type's consumption when no meter reading is given; CO2 is that
energy times the energy carrier's emission factor. The defaults are tank-to-wheel for fuel and
grid average for electricity; set the figures of your own fleet and grid in the fleet file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

DIESEL_KG_CO2_PER_LITRE = 2.68
"""IPCC 2006 default for diesel (74,100 kg CO2/TJ, 43.0 TJ/Gg) at a density of 0.84 kg/l."""
GRID_KG_CO2_PER_KWH = 0.5703
"""China's national average grid emission factor for 2022 (MEE, 2024)."""

EnergyUnit = Literal["l", "kWh"]
RecordKind = Literal["planned", "actual"]


@dataclass(frozen=True, slots=True)
class EnergyProfile:
    """How a vehicle type turns distance into energy and energy into CO2."""

    unit: EnergyUnit
    per_km: float
    """Litres or kWh per km."""
    kg_co2_per_unit: float

    @property
    def kg_co2_per_km(self) -> float:
        return self.per_km * self.kg_co2_per_unit

    def energy(self, distance_km: float) -> float:
        return distance_km * self.per_km

    def co2_kg(self, *, distance_km: float, energy: float | None = None) -> float:
        """CO2 from a metered energy use when there is one, otherwise from the distance."""
        used = self.energy(distance_km) if energy is None else energy
        return used * self.kg_co2_per_unit


def energy_field(unit: EnergyUnit) -> str:
    return "fuel_used_l" if unit == "l" else "kwh"


def carbon_record(
    *,
    kind: RecordKind,
    timestamp: str,
    transport_id: str,
    route: list[str],
    distance_km: float,
    profile: EnergyProfile,
    energy: float | None = None,
    plan_id: str | None = None,
) -> dict[str, Any]:
    """The ledger record of one route: ``{timestamp, transport_id, route, distance_km,
    fuel_used_l | kwh, co2_kg}`` plus whether it was planned or driven, and the plan."""
    used = profile.energy(distance_km) if energy is None else energy
    return {
        "kind": kind,
        "timestamp": timestamp,
        "transport_id": transport_id,
        "plan_id": plan_id,
        "route": list(route),
        "distance_km": round(distance_km, 3),
        energy_field(profile.unit): round(used, 3),
        "co2_kg": round(profile.co2_kg(distance_km=distance_km, energy=used), 3),
    }


@dataclass(frozen=True, slots=True)
class CarbonComparison:
    transport_id: str
    planned_kg: float
    actual_kg: float | None

    @property
    def difference_kg(self) -> float | None:
        return None if self.actual_kg is None else round(self.actual_kg - self.planned_kg, 3)


def compare(records: list[dict[str, Any]]) -> list[CarbonComparison]:
    """Planned vs actual CO2 per vehicle; the latest record of each kind counts (a re-plan or a
    corrected reading supersedes the earlier one, which stays in the ledger)."""
    planned: dict[str, float] = {}
    actual: dict[str, float] = {}
    for record in records:
        target = planned if record["kind"] == "planned" else actual
        target[str(record["transport_id"])] = float(record["co2_kg"])
    return [
        CarbonComparison(transport_id=vehicle, planned_kg=planned.get(vehicle, 0.0), actual_kg=actual.get(vehicle))
        for vehicle in sorted(set(planned) | set(actual))
    ]
