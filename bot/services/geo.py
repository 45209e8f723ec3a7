"""Great-circle distances and a grid index for "nearest services" queries.

``GridIndex`` buckets points into cells of ``cell_degrees`` and searches rings of cells
outwards from the query point until the N nearest are certain: a ring k cells away cannot
hold a point nearer than (k - 1) cells' width of latitude, so the search stops once N
candidates are nearer than that bound. Longitude cells shrink towards the poles, which the
bound accounts for by using the narrowest (cos of the nearest pole-ward latitude) width. When
the next ring would visit more cells than are occupied (sparse data, a far-away query), it
scans the occupied cells instead (cheaper by then).
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from typing import Callable, Generic, Iterable, Iterator, Optional, TypeVar

EARTH_RADIUS_KM = 6371.0088
T = TypeVar("T")


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in kilometres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


class GridIndex(Generic[T]):
    """Points with payloads, searchable by distance."""

    def __init__(self, cell_degrees: float = 0.5) -> None:
        if cell_degrees <= 0:
            raise ValueError("cell_degrees must be positive")
        self.cell = cell_degrees
        self._cells: dict[tuple[int, int], list[tuple[float, float, T]]] = defaultdict(list)
        self._count = 0
        self._lon_cells = int(math.ceil(360 / cell_degrees))

    def __len__(self) -> int:
        return self._count

    def _key(self, lat: float, lon: float) -> tuple[int, int]:
        return int(math.floor(lat / self.cell)), int(math.floor(lon / self.cell))

    def add(self, lat: float, lon: float, payload: T) -> None:
        self._cells[self._key(lat, lon)].append((lat, lon, payload))
        self._count += 1

    def _ring(self, centre: tuple[int, int], k: int) -> Iterator[tuple[int, int]]:
        ci, cj = centre
        if k == 0:
            yield centre
            return
        for di in range(-k, k + 1):
            for dj in (-k, k) if abs(di) != k else range(-k, k + 1):
                j = (cj + dj + self._lon_cells // 2) % self._lon_cells - self._lon_cells // 2
                yield ci + di, j

    def nearest(
        self,
        lat: float,
        lon: float,
        n: int,
        accept: Optional[Callable[[T], bool]] = None,
        max_km: float = 20_000.0,
    ) -> list[tuple[float, T]]:
        """Up to ``n`` (distance km, payload) nearest to (lat, lon), nearest first."""
        if n <= 0 or not self._count:
            return []
        centre = self._key(lat, lon)
        best: list[tuple[float, int, T]] = []  # max-heap by negated distance
        serial = 0
        max_rings = int(math.ceil(180 / self.cell)) + 1
        visited = 0
        for k in range(max_rings + 1):
            visited += max(1, 8 * k)
            if visited > 2 * len(self._cells):  # cheaper to look at every occupied cell
                return self._scan_all(lat, lon, n, accept, max_km)
            for key in self._ring(centre, k):
                for plat, plon, payload in self._cells.get(key, ()):
                    if accept is not None and not accept(payload):
                        continue
                    distance = haversine_km(lat, lon, plat, plon)
                    if distance > max_km:
                        continue
                    serial += 1
                    item = (-distance, serial, payload)
                    if len(best) < n:
                        heapq.heappush(best, item)
                    elif distance < -best[0][0]:
                        heapq.heapreplace(best, item)
            # Anything in ring k+1 or beyond is at least k cells away in latitude or longitude.
            nearest_outside = self._min_km_outside(lat, k)
            if len(best) == n and -best[0][0] <= nearest_outside:
                break
            if nearest_outside > max_km:
                break
        return [(-d, payload) for d, _, payload in sorted(best, key=lambda x: (-x[0], x[1]))]

    def _scan_all(self, lat: float, lon: float, n: int, accept: Optional[Callable[[T], bool]],
                  max_km: float) -> list[tuple[float, T]]:
        points = (p for cell in self._cells.values() for p in cell)
        hits = brute_force_nearest(points, lat, lon, n, accept)
        return [(d, payload) for d, payload in hits if d <= max_km]

    def _min_km_outside(self, lat: float, k: int) -> float:
        """A lower bound of the distance to any point outside rings 0..k."""
        cell_km = self.cell * math.pi / 180 * EARTH_RADIUS_KM
        lat_fraction = (lat / self.cell) - math.floor(lat / self.cell)
        lat_margin = min(lat_fraction, 1 - lat_fraction) * cell_km + k * cell_km
        if 2 * k + 1 >= self._lon_cells:  # every longitude is inside the rings already
            return lat_margin
        pole_lat = min(90.0, abs(lat) + (k + 1) * self.cell)
        lon_margin = k * cell_km * math.cos(math.radians(pole_lat))
        return max(0.0, min(lat_margin, lon_margin))


def brute_force_nearest(points: Iterable[tuple[float, float, T]], lat: float, lon: float, n: int,
                        accept: Optional[Callable[[T], bool]] = None) -> list[tuple[float, T]]:
    """The reference the index is tested against."""
    scored = [(haversine_km(lat, lon, plat, plon), payload) for plat, plon, payload in points
              if accept is None or accept(payload)]
    return sorted(scored, key=lambda x: x[0])[:n]
