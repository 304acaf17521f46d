"""A bounded uniform sample of streamed feature rows (reservoir sampling, Vitter's algorithm R)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from evaluation.metrics.contract import EmptyMetricError, StreamingMetric


class FeatureReservoir(StreamingMetric):
    """Keeps every row up to `capacity`, then a uniform random subset of that size.

    Kernel metrics (KID, CMMD) need the feature rows themselves; this bounds their memory at
    capacity * D floats whatever the number of samples. Below capacity nothing is dropped.

    `merge(other)` guarantees: when both sides together saw at most `capacity` rows, the result
    is exactly what one reservoir fed this side's rows and then the other's holds (every row, in
    that order). Above capacity the kept rows are a uniform random sample without replacement, of
    size `capacity`, of the union of the rows both sides saw (as one pass would keep, but not the
    same rows), and further updates continue algorithm R over the combined count.
    """

    def __init__(self, dim: int, *, capacity: int = 20_000, seed: int = 0) -> None:
        if capacity < 2:
            raise ValueError(f"capacity must be >= 2, got {capacity}")
        self.dim = dim
        self.capacity = capacity
        self.seed = seed
        self.reset()

    def reset(self) -> None:
        self.n_seen = 0
        self._rows = np.empty((0, self.dim), dtype=np.float64)
        self._rng = np.random.default_rng(self.seed)

    def update(self, features: np.ndarray | torch.Tensor) -> None:
        """Add rows: float [B, D]."""
        if isinstance(features, torch.Tensor):
            features = features.detach().to("cpu", torch.float64).numpy()
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"features must be [B, {self.dim}], got {list(x.shape)}")
        if not np.isfinite(x).all():
            raise ValueError("features contain NaN or infinite values")
        room = self.capacity - self._rows.shape[0]
        if room > 0:
            self._rows = np.concatenate([self._rows, x[:room]])
            self.n_seen += min(room, x.shape[0])
            x = x[room:]
        for row in x:
            self.n_seen += 1
            slot = int(self._rng.integers(0, self.n_seen))
            if slot < self.capacity:
                self._rows[slot] = row

    def merge_key(self) -> dict[str, Any]:
        return {"dim": self.dim, "capacity": self.capacity}

    def merge(self, other: FeatureReservoir) -> None:
        self.check_mergeable(other)
        total = self.n_seen + other.n_seen
        if total <= self.capacity:
            self._rows = np.concatenate([self._rows, other._rows])
        else:
            # In a uniform sample of `capacity` rows of the union, the number drawn from this
            # side is hypergeometric; each side's rows are already a uniform sample of its own.
            mine = int(self._rng.hypergeometric(self.n_seen, other.n_seen, self.capacity))
            keep_mine = self._rng.choice(self._rows.shape[0], size=mine, replace=False)
            keep_theirs = self._rng.choice(
                other._rows.shape[0], size=self.capacity - mine, replace=False
            )
            self._rows = np.concatenate([self._rows[keep_mine], other._rows[keep_theirs]])
        self.n_seen = total

    def compute(self) -> np.ndarray:
        """The kept rows: float64 [min(n_seen, capacity), D]; EmptyMetricError before any row."""
        if self.n_seen == 0:
            raise EmptyMetricError("the feature reservoir has seen no rows yet")
        return self._rows

    @property
    def features(self) -> np.ndarray:
        """The kept rows: float64 [min(n_seen, capacity), D] (empty before any update)."""
        return self._rows
