"""Integer distance and duration matrices, computed once before a solve.

Solvers only ever look numbers up in these matrices (no Python callback per arc), and both
backends see the very same integers, so their costs compare exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from backoffice.routing.model import IntMatrix

EARTH_RADIUS_M = 6_371_008.8
"""Mean Earth radius (IUGG), metres."""


def dimacs_tenths(coordinates: Sequence[tuple[float, float]]) -> IntMatrix:
    """Euclidean distances truncated to one decimal (the DIMACS VRPTW convention), in tenths.

    With integer coordinates the truncation is exact: ``floor(sqrt(100 * d²))`` on integers
    below 2**52 never suffers from floating-point rounding at a tenth boundary.
    """
    xy = np.asarray(coordinates, dtype=np.float64)
    if np.all(xy == np.round(xy)):
        ints = xy.astype(np.int64)
        dx = ints[:, None, 0] - ints[None, :, 0]
        dy = ints[:, None, 1] - ints[None, :, 1]
        squared_hundredths = 100 * (dx * dx + dy * dy)
        return np.floor(np.sqrt(squared_hundredths.astype(np.float64))).astype(np.int64)
    delta = xy[:, None, :] - xy[None, :, :]
    return np.floor(10 * np.hypot(delta[..., 0], delta[..., 1]) + 1e-9).astype(np.int64)


def haversine_metres(latlon: Sequence[tuple[float, float]]) -> NDArray[np.float64]:
    """Great-circle distances between (latitude, longitude) pairs in degrees, in metres."""
    radians = np.radians(np.asarray(latlon, dtype=np.float64))
    lat, lon = radians[:, 0], radians[:, 1]
    dlat = lat[:, None] - lat[None, :]
    dlon = lon[:, None] - lon[None, :]
    a = np.sin(dlat / 2) ** 2 + np.cos(lat[:, None]) * np.cos(lat[None, :]) * np.sin(dlon / 2) ** 2
    metres: NDArray[np.float64] = 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
    return metres


def road_matrices(
    latlon: Sequence[tuple[float, float]], *, detour_factor: float, speed_kmh: float
) -> tuple[IntMatrix, IntMatrix]:
    """Estimated road distance (metres) and driving time (seconds) without a road network.

    Streets are longer than the straight line: the great-circle distance times a detour factor
    (about 1.3 in a city grid). Replace this with a routing engine's table (OSRM, Valhalla)
    when one is available; the solvers only need the two integer matrices.
    """
    metres = haversine_metres(latlon) * detour_factor
    seconds = metres / (speed_kmh / 3.6)
    return np.rint(metres).astype(np.int64), np.rint(seconds).astype(np.int64)
