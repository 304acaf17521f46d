"""Kernel Inception Distance: unbiased MMD^2 with the cubic polynomial kernel, over random subsets.

Same estimator as torchmetrics / torch-fidelity (Bińkowski et al., 2018):
k(x, y) = (x.y / D + 1)^3; for each of `subsets` draws of `subset_size` rows from each side the
unbiased MMD^2 is computed; the score is their mean and the spread their standard deviation
(reported as lower = mean - std, upper = mean + std).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from evaluation.metrics.contract import EmptyMetricError, StreamingMetric
from evaluation.metrics.reservoir import FeatureReservoir
from evaluation.metrics.result import MetricValue


def polynomial_kernel(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    degree: int = 3,
    gamma: float | None = None,
    coef: float = 1.0,
) -> torch.Tensor:
    """(gamma x y^T + coef)^degree for x [N, D], y [M, D] -> [N, M]; gamma defaults to 1 / D."""
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    return (x @ y.T * gamma + coef) ** degree


def unbiased_mmd2(k_xx: torch.Tensor, k_xy: torch.Tensor, k_yy: torch.Tensor) -> torch.Tensor:
    """Unbiased MMD^2 from kernel blocks of two equally sized samples of m rows."""
    m = k_xx.shape[0]
    within = (k_xx.sum() - k_xx.diagonal().sum() + k_yy.sum() - k_yy.diagonal().sum()) / (
        m * (m - 1)
    )
    return within - 2 * k_xy.sum() / (m * m)


class KernelInceptionDistance(StreamingMetric):
    """Streaming KID of evaluated features against reference features (float [N_ref, D]).

    The evaluated rows are kept in a `FeatureReservoir`, so `merge` carries its guarantee: equal
    to one pass while both sides together saw at most `capacity` rows, a uniform sample above.
    """

    def __init__(
        self,
        reference_features: np.ndarray,
        *,
        backbone: str,
        weights_sha256: str,
        metric: str = "kid",
        subsets: int = 100,
        subset_size: int = 1000,
        degree: int = 3,
        gamma: float | None = None,
        coef: float = 1.0,
        capacity: int = 20_000,
        seed: int = 0,
    ) -> None:
        reference = np.asarray(reference_features, dtype=np.float64)
        if reference.ndim != 2 or reference.shape[0] < 2:
            raise ValueError(f"reference features must be [N >= 2, D], got {list(reference.shape)}")
        self.reference = torch.from_numpy(reference)
        self.metric, self.backbone, self.weights_sha256 = metric, backbone, weights_sha256
        self.subsets, self.subset_size = subsets, subset_size
        self.degree, self.gamma, self.coef = degree, gamma, coef
        self.seed = seed
        self.samples = FeatureReservoir(reference.shape[1], capacity=capacity, seed=seed)

    def update(self, features: np.ndarray | torch.Tensor) -> None:
        """Add evaluated features: float [B, D]."""
        self.samples.update(features)

    def reset(self) -> None:
        self.samples.reset()

    def merge_key(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "backbone": self.backbone,
            "weights_sha256": self.weights_sha256,
            "subsets": self.subsets,
            "subset_size": self.subset_size,
            "kernel": (self.degree, self.gamma, self.coef),
            "seed": self.seed,
            "reference features": self.reference,
        }

    def merge(self, other: KernelInceptionDistance) -> None:
        self.check_mergeable(other)
        self.samples.merge(other.samples)

    def compute(self, generator: torch.Generator | None = None) -> MetricValue:
        """Mean and std of the subset estimates; `generator` draws the subsets (seeded default)."""
        fake = torch.from_numpy(self.samples.features)
        real = self.reference
        if fake.shape[0] < 2:
            raise EmptyMetricError(
                f"{self.metric} needs at least 2 evaluated samples, got {fake.shape[0]}"
            )
        size = min(self.subset_size, real.shape[0], fake.shape[0])
        if generator is None:
            generator = torch.Generator().manual_seed(self.seed)
        scores = []
        for _ in range(self.subsets):
            f_real = real[torch.randperm(real.shape[0], generator=generator)[:size]]
            f_fake = fake[torch.randperm(fake.shape[0], generator=generator)[:size]]
            kernel = dict(degree=self.degree, gamma=self.gamma, coef=self.coef)
            scores.append(
                unbiased_mmd2(
                    polynomial_kernel(f_real, f_real, **kernel),
                    polynomial_kernel(f_real, f_fake, **kernel),
                    polynomial_kernel(f_fake, f_fake, **kernel),
                )
            )
        values = torch.stack(scores)
        mean, std = float(values.mean()), float(values.std(unbiased=False))
        return MetricValue(
            metric=self.metric,
            value=mean,
            lower=mean - std,
            upper=mean + std,
            n=self.samples.n_seen,
            backbone=self.backbone,
            weights_sha256=self.weights_sha256,
            details={
                "std": std,
                "subsets": self.subsets,
                "subset_size": size,
                "reference_n": int(real.shape[0]),
                "seed": self.seed,  # draws the reservoir and the subsets
            },
        )
