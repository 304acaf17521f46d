"""A bounded uniform sample of streamed feature rows (reservoir sampling, Vitter's algorithm R)."""

from __future__ import annotations

import numpy as np
import torch


class FeatureReservoir:
    """Keeps every row up to `capacity`, then a uniform random subset of that size.

    Kernel metrics (KID, CMMD) need the feature rows themselves; this bounds their memory at
    capacity * D floats whatever the number of samples. Below capacity nothing is dropped.
    """

    def __init__(self, dim: int, *, capacity: int = 20_000, seed: int = 0) -> None:
        if capacity < 2:
            raise ValueError(f"capacity must be >= 2, got {capacity}")
        self.dim = dim
        self.capacity = capacity
        self.n_seen = 0
        self._rows = np.empty((0, dim), dtype=np.float64)
        self._rng = np.random.default_rng(seed)

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

    @property
    def features(self) -> np.ndarray:
        """The kept rows: float64 [min(n_seen, capacity), D]."""
        return self._rows
