"""CO2 = activity × emission factor, checked against numbers worked out by hand."""

from __future__ import annotations

import pytest

from backoffice.routing.emissions import (
    DIESEL_KG_CO2_PER_LITRE,
    GRID_KG_CO2_PER_KWH,
    EnergyProfile,
    carbon_record,
    compare,
)
from backoffice.routing.fleet import Capacity, Objective, ObjectiveMode, VehicleTypeConfig

DIESEL = EnergyProfile(unit="l", per_km=0.095, kg_co2_per_unit=DIESEL_KG_CO2_PER_LITRE)
ELECTRIC = EnergyProfile(unit="kWh", per_km=0.2, kg_co2_per_unit=GRID_KG_CO2_PER_KWH)


def test_emission_factors_are_the_documented_ones() -> None:
    # IPCC 2006 diesel: 74,100 kg CO2/TJ × 43.0 TJ/Gg = 3.1863 kg CO2 per kg, × 0.84 kg/l.
    assert abs(DIESEL_KG_CO2_PER_LITRE - 74_100 * 43.0e-6 * 0.84) < 0.005
    assert GRID_KG_CO2_PER_KWH == 0.5703


def test_diesel_van_from_distance() -> None:
    # 120 km × 0.095 l/km = 11.4 l; 11.4 l × 2.68 kg/l = 30.552 kg.
    assert DIESEL.kg_co2_per_km == pytest.approx(0.2546)
    assert DIESEL.energy(120) == pytest.approx(11.4)
    assert DIESEL.co2_kg(distance_km=120) == pytest.approx(30.552)


def test_electric_van_from_distance_and_from_a_meter_reading() -> None:
    # 50 km × 0.2 kWh/km = 10 kWh; × 0.5703 kg/kWh = 5.703 kg. A meter reading of 12.5 kWh wins.
    assert ELECTRIC.co2_kg(distance_km=50) == pytest.approx(5.703)
    assert ELECTRIC.co2_kg(distance_km=50, energy=12.5) == pytest.approx(7.12875)


def test_carbon_record_has_the_ledger_fields() -> None:
    record = carbon_record(
        kind="planned",
        timestamp="2026-11-23T08:00:00+00:00",
        transport_id="SH-D101",
        route=["p1", "p2"],
        distance_km=42.1234,
        profile=DIESEL,
        plan_id="plan-1",
    )
    # 42.1234 km × 0.095 = 4.001723 l → 4.002; × 2.68 = 10.724618 → 10.725 kg
    assert record == {
        "kind": "planned",
        "timestamp": "2026-11-23T08:00:00+00:00",
        "transport_id": "SH-D101",
        "plan_id": "plan-1",
        "route": ["p1", "p2"],
        "distance_km": 42.123,
        "fuel_used_l": 4.002,
        "co2_kg": 10.725,
    }
    metered = carbon_record(
        kind="actual", timestamp="t", transport_id="SH-E201", route=[], distance_km=30, profile=ELECTRIC, energy=7
    )
    assert metered["kwh"] == 7 and "fuel_used_l" not in metered
    assert metered["co2_kg"] == pytest.approx(3.992)  # 7 × 0.5703 = 3.9921


def test_planned_vs_actual_takes_the_latest_record_of_each_kind() -> None:
    records = [
        {"kind": "planned", "transport_id": "a", "co2_kg": 10.0},
        {"kind": "planned", "transport_id": "b", "co2_kg": 4.0},
        {"kind": "planned", "transport_id": "a", "co2_kg": 12.0},  # re-planned
        {"kind": "actual", "transport_id": "a", "co2_kg": 13.5},
    ]
    rows = {r.transport_id: r for r in compare(records)}
    assert (rows["a"].planned_kg, rows["a"].actual_kg, rows["a"].difference_kg) == (12.0, 13.5, 1.5)
    assert (rows["b"].planned_kg, rows["b"].actual_kg, rows["b"].difference_kg) == (4.0, None, None)


def test_objective_prices_distance_and_co2_per_vehicle_type() -> None:
    van = VehicleTypeConfig(
        id="diesel-van",
        energy_unit="l",
        energy_per_km=0.095,
        cost_per_km=1.6,
        fixed_cost=260,
        capacity=Capacity(parcels=60, weight_kg=900, volume_l=6000),
    )
    assert Objective(mode=ObjectiveMode.COST).rate_per_km(van) == pytest.approx(1.6)
    assert Objective(mode=ObjectiveMode.CO2).rate_per_km(van) == pytest.approx(0.2546)
    assert Objective(mode=ObjectiveMode.CO2).fixed(van) == 0
    # 1.6 yuan/km + 0.5 yuan/kg × 0.2546 kg/km = 1.7273 yuan/km
    assert Objective(mode=ObjectiveMode.PRICED, co2_price_per_kg=0.5).rate_per_km(van) == pytest.approx(1.7273)
