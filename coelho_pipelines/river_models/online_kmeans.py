"""Sequential k-means for a stream (a River `Clusterer`): stable centres from few passes.

River's `cluster.KMeans` starts from random centres and moves the nearest one a fixed share
(`halflife`) towards every point, so its centres chase the latest points and its result
depends much on the seed and the order. This one:
- buffers the first `warmup` points, then seeds `n_clusters` centres by k-means++ on them
  (deterministic for a seed) refined by a few Lloyd iterations;
- afterwards moves the nearest centre towards each point by `max(1 / n, min_rate)`, where
  n counts the points that centre took (MacQueen's running mean, with a floor so the centres
  keep following a slowly changing stream).
Before it is seeded it predicts cluster 0. `centers` is replaced, never edited in place.
Distances are Euclidean over the union of keys
(a missing key is 0), as River's clusterers do.
"""

from __future__ import annotations

import math
import random
from typing import Any

from river import base


def _distance2(a: dict[Any, float], b: dict[Any, float]) -> float:
    """Squared Euclidean distance over the union of keys (a missing key is 0)."""
    if len(a) == len(b):  # the usual case: the same dense keys (a KeyError means not)
        total = 0.0
        try:
            for key, value in a.items():
                delta = value - b[key]
                total += delta * delta
            return total
        except KeyError:
            pass
    total = 0.0
    for key, value in a.items():
        delta = value - b.get(key, 0.0)
        total += delta * delta
    for key, value in b.items():
        if key not in a:
            total += value * value
    return total


def _mean(points: list[dict[Any, float]]) -> dict[Any, float]:
    out: dict[Any, float] = {}
    for point in points:
        for key, value in point.items():
            out[key] = out.get(key, 0.0) + value
    return {key: value / len(points) for key, value in out.items()}


class OnlineKMeans(base.Clusterer):
    """Sequential k-means seeded by k-means++ on a warm-up buffer (see the module doc).

    Parameters: `n_clusters`; `warmup` points buffered before seeding (at least
    `n_clusters`); `min_rate`, the smallest step a centre takes towards a point; `lloyd`,
    refinement passes over the buffer at seeding; `seed`.
    """

    def __init__(
        self,
        n_clusters: int = 5,
        warmup: int = 500,
        min_rate: float = 0.005,
        lloyd: int = 10,
        seed: int = 42,
    ) -> None:
        if n_clusters < 1 or warmup < n_clusters:
            raise ValueError("need n_clusters >= 1 and warmup >= n_clusters")
        self.n_clusters = n_clusters
        self.warmup = warmup
        self.min_rate = min_rate
        self.lloyd = lloyd
        self.seed = seed
        self.centers: dict[int, dict[Any, float]] = {}
        self.counts: dict[int, int] = {}
        self._buffer: list[dict[Any, float]] = []

    @property
    def seeded(self) -> bool:
        return bool(self.centers)

    def _nearest(self, x: dict[Any, float]) -> int:
        best, nearest = math.inf, 0
        for i, center in self.centers.items():
            d = _distance2(x, center)
            if d < best:
                best, nearest = d, i
        return nearest

    def predict_one(self, x: dict[Any, float]) -> int:
        return self._nearest(x) if self.centers else 0

    def learn_one(self, x: dict[Any, float]) -> None:
        if not self.centers:
            self._buffer.append(dict(x))
            if len(self._buffer) >= self.warmup:
                self._seed_centers()
            return
        i = self._nearest(x)
        n = self.counts[i] = self.counts[i] + 1
        rate = max(1.0 / n, self.min_rate)
        center = self.centers[i]
        moved = {key: value + rate * (x.get(key, 0.0) - value) for key, value in center.items()}
        for key, value in x.items():
            if key not in center:
                moved[key] = rate * value
        # New dicts, never edits: whoever kept the previous `centers` (River's rolling
        # Silhouette keeps each event's, to revert it later) still sees them unchanged.
        self.centers = {**self.centers, i: moved}

    def _seed_centers(self) -> None:
        """k-means++ on the buffer, then Lloyd passes; the buffer is then dropped."""
        rng = random.Random(self.seed)
        points = self._buffer
        centers = [points[rng.randrange(len(points))]]
        while len(centers) < self.n_clusters:
            weights = [min(_distance2(p, c) for c in centers) for p in points]
            total = sum(weights)
            if total <= 0:
                centers.append(points[rng.randrange(len(points))])
                continue
            target, acc = rng.random() * total, 0.0
            for point, weight in zip(points, weights, strict=True):
                acc += weight
                if acc >= target:
                    centers.append(point)
                    break
            else:
                centers.append(points[-1])
        centers = [dict(c) for c in centers]
        assignment = [0] * len(points)
        for _ in range(self.lloyd):
            groups: list[list[dict[Any, float]]] = [[] for _ in centers]
            for j, point in enumerate(points):
                k = min(range(len(centers)), key=lambda i: _distance2(point, centers[i]))
                assignment[j] = k
                groups[k].append(point)
            centers = [_mean(g) if g else c for g, c in zip(groups, centers, strict=True)]
        self.centers = dict(enumerate(centers))
        self.counts = {i: max(1, assignment.count(i)) for i in self.centers}
        self._buffer = []
