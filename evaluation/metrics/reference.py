"""Reference statistics of a real image/video set for one backbone, stored as a plain .npz.

Holds mu [D] and sigma [D, D] (for Fréchet distances) and a bounded uniform sample of the
feature rows (for KID and CMMD), plus the backbone name and weights sha256 they belong to.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from evaluation.metrics.frechet import FeatureStatistics, GaussianStats
from evaluation.metrics.reservoir import FeatureReservoir


class ReferenceMismatch(ValueError):
    """Reference statistics were computed with another backbone or other weights."""


@dataclass(frozen=True)
class ReferenceStats:
    backbone: str
    weights_sha256: str
    mu: np.ndarray
    sigma: np.ndarray
    n: int
    features: np.ndarray  # float32 [min(n, capacity), D]

    @property
    def gaussian(self) -> GaussianStats:
        return GaussianStats(mu=self.mu, sigma=self.sigma, n=self.n)

    @classmethod
    def from_features(
        cls,
        batches: Iterable[np.ndarray | torch.Tensor],
        *,
        backbone: str,
        weights_sha256: str,
        capacity: int = 10_000,
        seed: int = 0,
    ) -> ReferenceStats:
        """Stream feature batches [B, D] into statistics (at least 2 rows)."""
        stats: FeatureStatistics | None = None
        sample: FeatureReservoir | None = None
        for batch in batches:
            if stats is None:
                stats = FeatureStatistics(int(batch.shape[1]))
                sample = FeatureReservoir(int(batch.shape[1]), capacity=capacity, seed=seed)
            stats.update(batch)
            sample.update(batch)
        if stats is None or stats.n < 2:
            raise ValueError("a reference set needs at least 2 items")
        mu, sigma = stats.mean_cov()
        return cls(
            backbone=backbone,
            weights_sha256=weights_sha256,
            mu=mu,
            sigma=sigma,
            n=stats.n,
            features=sample.features.astype(np.float32),
        )

    def check_backbone(self, backbone: str, weights_sha256: str) -> None:
        if (backbone, weights_sha256) != (self.backbone, self.weights_sha256):
            raise ReferenceMismatch(
                f"reference statistics belong to {self.backbone} ({self.weights_sha256[:12]}), "
                f"not {backbone} ({weights_sha256[:12]}); rebuild them with these weights"
            )

    def save(self, path: Path) -> None:
        np.savez(
            path,
            mu=self.mu,
            sigma=self.sigma,
            n=np.int64(self.n),
            features=self.features,
            backbone=np.str_(self.backbone),
            weights_sha256=np.str_(self.weights_sha256),
        )

    @classmethod
    def load(cls, path: Path) -> ReferenceStats:
        """Read a file written by `save` (no pickled objects accepted)."""
        try:
            with np.load(path, allow_pickle=False) as data:
                return cls(
                    backbone=str(data["backbone"]),
                    weights_sha256=str(data["weights_sha256"]),
                    mu=data["mu"].astype(np.float64),
                    sigma=data["sigma"].astype(np.float64),
                    n=int(data["n"]),
                    features=data["features"],
                )
        except (OSError, KeyError, ValueError) as exc:
            raise ValueError(f"{path} is not a reference statistics file: {exc}") from exc
