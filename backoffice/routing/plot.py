"""Draw a stored plan as a PNG: depots, stops in visiting order per vehicle, unserved stops,
and per-route distance, load, time and CO2 in the legend (a map-like sketch, no map tiles)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter


def render_plan(plan: dict[str, Any], path: Path) -> Path:
    depots = plan["depots"]
    mid_lat = sum(d["lat"] for d in depots) / len(depots)
    squeeze = math.cos(math.radians(mid_lat))  # a degree of longitude is shorter than one of latitude

    # A Figure without pyplot: no global state, so plans can be drawn from worker threads.
    figure = Figure(figsize=(11, 8), dpi=100)
    axes = figure.subplots()
    colours = colormaps["tab10"]
    for number, route in enumerate(plan["routes"]):
        colour = colours(number % 10)
        path_points = [route["start"], *route["stops"], route["end"]]
        xs = [p["lon"] * squeeze for p in path_points]
        ys = [p["lat"] for p in path_points]
        unit = "l" if "fuel_used_l" in route else "kWh"
        energy = route.get("fuel_used_l", route.get("kwh", 0.0))
        label = (
            f"{route['vehicle_id']} ({route['vehicle_type']}): {len(route['stops'])} stops, "
            f"{route['distance_km']:.1f} km, {route['depart']}-{route['return']}, "
            f"max {route['max_load']['parcels']} parcels / {route['max_load']['weight_kg']:.0f} kg, "
            f"{energy:.1f} {unit}, {route['co2_kg']:.1f} kg CO2"
        )
        axes.plot(xs, ys, "-", color=colour, linewidth=1.6, alpha=0.85, label=label)
        for order, stop in enumerate(route["stops"], start=1):
            marker = "s" if stop["kind"] == "exchange" else "o"
            axes.plot(stop["lon"] * squeeze, stop["lat"], marker, color=colour, markersize=5)
            axes.annotate(
                str(order), (stop["lon"] * squeeze, stop["lat"]), fontsize=6, xytext=(3, 3), textcoords="offset points"
            )
    for stop in plan["unserved"]:
        if "lat" in stop:
            axes.plot(stop["lon"] * squeeze, stop["lat"], "rx", markersize=8)
    for depot in depots:
        axes.plot(depot["lon"] * squeeze, depot["lat"], "k^", markersize=12)
        axes.annotate(
            depot["id"],
            (depot["lon"] * squeeze, depot["lat"]),
            fontsize=9,
            fontweight="bold",
            xytext=(6, -10),
            textcoords="offset points",
        )
    totals = plan["totals"]
    unserved = len(plan["unserved"])
    axes.set_title(
        f"Pick-up routes {plan['date']} (rev {plan['revision']}, {plan['backend']}): "
        f"{totals['stops']} stops, {totals['distance_km']:.1f} km, {totals['co2_kg']:.1f} kg CO2, "
        f"{totals['cost_yuan']:.0f} yuan, {unserved} unserved",
        fontsize=10,
    )
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value / squeeze:.2f}"))
    axes.set_xlabel("longitude")
    axes.set_ylabel("latitude")
    axes.set_aspect("equal", adjustable="datalim")
    axes.grid(alpha=0.2)
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), fontsize=7, frameon=False)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path
