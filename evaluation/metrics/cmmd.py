"""CMMD (Jayasumana et al., CVPR 2024): MMD^2 between CLIP image embeddings.

Gaussian RBF kernel k(x, y) = exp(-||x - y||^2 / (2 sigma^2)) with sigma = 10, scaled by 1000,
unbiased estimator (diagonal terms excluded; the paper's reference code uses the biased
V-statistic, which differs by O(1/n)). Inputs are L2-normalised CLIP embeddings. Kernel sums are
computed in row blocks (memory O(block * n)); the interval is a percentile bootstrap that
resamples both sides with multinomial weights, evaluated in the same blocked pass.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from evaluation.metrics.contract import EmptyMetricError, StreamingMetric
from evaluation.metrics.reservoir import FeatureReservoir
from evaluation.metrics.result import MetricValue

SIGMA = 10.0
SCALE = 1000.0


def _weighted_kernel_sums(
    x: torch.Tensor,
    y: torch.Tensor,
    wx: torch.Tensor,
    wy: torch.Tensor,
    *,
    sigma: float,
    block: int,
) -> torch.Tensor:
    """sum_ij wx[b, i] k(x_i, y_j) wy[b, j] for every weight row b -> [B]."""
    gamma = 1.0 / (2.0 * sigma * sigma)
    y_sq = (y * y).sum(dim=1)
    out = torch.zeros(wx.shape[0], dtype=torch.float64)
    for start in range(0, x.shape[0], block):
        xb = x[start : start + block]
        dist = (xb * xb).sum(dim=1)[:, None] + y_sq[None, :] - 2.0 * xb @ y.T
        kernel = torch.exp(-gamma * dist.clamp_min(0.0))
        out += (wx[:, start : start + block].T * (kernel @ wy.T)).sum(dim=0)
    return out


def cmmd_estimates(
    x: np.ndarray | torch.Tensor,
    y: np.ndarray | torch.Tensor,
    wx: torch.Tensor,
    wy: torch.Tensor,
    *,
    sigma: float = SIGMA,
    scale: float = SCALE,
    block: int = 1024,
) -> torch.Tensor:
    """Unbiased scaled MMD^2 of x [N, E] vs y [M, E] under multinomial count weights [B, N], [B, M].

    All-ones weights give the plain estimate; bootstrap counts give bootstrap replicates. Within
    a sample, pairs of copies of the same point are excluded (as the diagonal is), so duplicates
    from resampling do not bias the replicates upwards.
    """
    x = torch.as_tensor(x, dtype=torch.float64)
    y = torch.as_tensor(y, dtype=torch.float64)
    n, m = x.shape[0], y.shape[0]
    # k(x, x) = 1: the weighted diagonal is sum(w^2), the distinct-point pairs number m^2 - sum(w^2).
    sq_x, sq_y = (wx * wx).sum(dim=1), (wy * wy).sum(dim=1)
    k_xx = _weighted_kernel_sums(x, x, wx, wx, sigma=sigma, block=block) - sq_x
    k_yy = _weighted_kernel_sums(y, y, wy, wy, sigma=sigma, block=block) - sq_y
    k_xy = _weighted_kernel_sums(x, y, wx, wy, sigma=sigma, block=block)
    return scale * (k_xx / (n * n - sq_x) + k_yy / (m * m - sq_y) - 2.0 * k_xy / (n * m))


class CMMD(StreamingMetric):
    """Streaming CMMD of evaluated embeddings against reference embeddings [N_ref, E].

    The evaluated rows are kept in a `FeatureReservoir`, so `merge` carries its guarantee: equal
    to one pass while both sides together saw at most `capacity` rows, a uniform sample above.
    """

    def __init__(
        self,
        reference_embeddings: np.ndarray,
        *,
        backbone: str,
        weights_sha256: str,
        metric: str = "cmmd",
        sigma: float = SIGMA,
        scale: float = SCALE,
        bootstrap: int = 100,
        confidence: float = 0.95,
        capacity: int = 20_000,
        seed: int = 0,
    ) -> None:
        reference = np.asarray(reference_embeddings, dtype=np.float64)
        if reference.ndim != 2 or reference.shape[0] < 2:
            raise ValueError(
                f"reference embeddings must be [N >= 2, E], got {list(reference.shape)}"
            )
        self.reference = reference
        self.metric, self.backbone, self.weights_sha256 = metric, backbone, weights_sha256
        self.sigma, self.scale = sigma, scale
        self.bootstrap, self.confidence, self.seed = bootstrap, confidence, seed
        self.samples = FeatureReservoir(reference.shape[1], capacity=capacity, seed=seed)

    def update(self, embeddings: np.ndarray | torch.Tensor) -> None:
        """Add evaluated embeddings: float [B, E]."""
        self.samples.update(embeddings)

    def reset(self) -> None:
        self.samples.reset()

    def merge_key(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "backbone": self.backbone,
            "weights_sha256": self.weights_sha256,
            "kernel": (self.sigma, self.scale),
            "bootstrap": (self.bootstrap, self.confidence, self.seed),
            "reference embeddings": self.reference,
        }

    def merge(self, other: CMMD) -> None:
        self.check_mergeable(other)
        self.samples.merge(other.samples)

    def compute(self) -> MetricValue:
        x, y = self.samples.features, self.reference
        if x.shape[0] < 2:
            raise EmptyMetricError(
                f"{self.metric} needs at least 2 evaluated samples, got {x.shape[0]}"
            )
        n, m = x.shape[0], y.shape[0]
        generator = torch.Generator().manual_seed(self.seed)
        b = self.bootstrap
        wx = torch.ones(b + 1, n, dtype=torch.float64)
        wy = torch.ones(b + 1, m, dtype=torch.float64)
        if b:
            # Row 0 keeps unit weights (the estimate itself); rows 1..B are bootstrap draws.
            draws_x = torch.randint(0, n, (b, n), generator=generator)
            draws_y = torch.randint(0, m, (b, m), generator=generator)
            wx[1:] = torch.zeros(b, n, dtype=torch.float64).scatter_add_(
                1, draws_x, torch.ones(b, n, dtype=torch.float64)
            )
            wy[1:] = torch.zeros(b, m, dtype=torch.float64).scatter_add_(
                1, draws_y, torch.ones(b, m, dtype=torch.float64)
            )
        estimates = cmmd_estimates(x, y, wx, wy, sigma=self.sigma, scale=self.scale)
        value = float(estimates[0])
        lower = upper = None
        if b:
            tail = (1.0 - self.confidence) / 2
            lower, upper = (float(q) for q in np.quantile(estimates[1:].numpy(), [tail, 1 - tail]))
        return MetricValue(
            metric=self.metric,
            value=value,
            lower=lower,
            upper=upper,
            n=self.samples.n_seen,
            backbone=self.backbone,
            weights_sha256=self.weights_sha256,
            details={
                "reference_n": m,
                "sigma": self.sigma,
                "scale": self.scale,
                "ci": f"percentile bootstrap, {b} replicates",
                "seed": self.seed,  # draws the reservoir and the bootstrap replicates
            },
        )
