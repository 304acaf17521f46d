"""Fréchet distance between Gaussians and the streaming feature statistics it is computed from.

One `frechet_distance` (float64) serves FID, FVD and every FD on another backbone:

    FD = ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr sqrt(S1 S2)

tr sqrt(S1 S2) is the sum of square roots of the eigenvalues of S1 S2, which are the eigenvalues
of the symmetric PSD matrix A^T S2 A for any factor A with S1 = A A^T. A is a Cholesky factor
(an eigendecomposition factor when S1 is singular, e.g. fewer samples than dimensions), so the
cost is one Cholesky, two matrix products and one symmetric eigenvalue solve, against a general
non-symmetric eigensolve (torchmetrics) or an iterative Schur-based sqrtm (scipy).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy import stats as scipy_stats

from evaluation.metrics.contract import EmptyMetricError, StreamingMetric
from evaluation.metrics.result import MetricValue

ArrayLike = np.ndarray | torch.Tensor


def _as_float64(x: ArrayLike, device: torch.device | str | None) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().to(device=device or x.device, dtype=torch.float64)
    return torch.as_tensor(np.asarray(x), dtype=torch.float64, device=device)


def _psd_factor(sigma: torch.Tensor) -> torch.Tensor:
    """A with sigma = A A^T: Cholesky when positive definite, else a clipped eigen-factor."""
    factor, info = torch.linalg.cholesky_ex(sigma)
    if int(info) == 0:
        return factor
    eigenvalues, eigenvectors = torch.linalg.eigh(sigma)
    return eigenvectors * eigenvalues.clamp_min(0.0).sqrt()


def trace_sqrt_product(sigma1: ArrayLike, sigma2: ArrayLike, *, device=None) -> float:
    """tr sqrt(sigma1 @ sigma2) for symmetric PSD matrices [D, D], in float64."""
    s1 = _as_float64(sigma1, device)
    s2 = _as_float64(sigma2, s1.device)
    s1 = (s1 + s1.T) / 2  # exact symmetry; the inputs are symmetric up to rounding
    s2 = (s2 + s2.T) / 2
    # eig(S1 S2) = eig(S2 S1): factor whichever is positive definite (Cholesky), e.g. the
    # reference when the evaluated set has fewer samples than dimensions.
    if int(torch.linalg.cholesky_ex(s1)[1]) != 0 and int(torch.linalg.cholesky_ex(s2)[1]) == 0:
        s1, s2 = s2, s1
    factor = _psd_factor(s1)
    middle = factor.T @ s2 @ factor
    eigenvalues = torch.linalg.eigvalsh((middle + middle.T) / 2)
    # Tiny negative eigenvalues are rounding noise of a PSD product.
    return float(eigenvalues.clamp_min(0.0).sqrt().sum())


def frechet_distance(
    mu1: ArrayLike, sigma1: ArrayLike, mu2: ArrayLike, sigma2: ArrayLike, *, device=None
) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2).

    mu: [D], sigma: [D, D] symmetric PSD (numpy or torch, any float dtype); computed in float64,
    on `device` if given (a CUDA device makes d = 2048 take milliseconds). Units: squared feature
    units. Raises ValueError on mismatched shapes or non-finite input.
    """
    m1 = _as_float64(mu1, device).reshape(-1)
    m2 = _as_float64(mu2, m1.device).reshape(-1)
    s1 = _as_float64(sigma1, m1.device)
    s2 = _as_float64(sigma2, m1.device)
    d = m1.shape[0]
    if m2.shape[0] != d or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(
            f"shape mismatch: mu1 {tuple(m1.shape)}, sigma1 {tuple(s1.shape)}, "
            f"mu2 {tuple(m2.shape)}, sigma2 {tuple(s2.shape)}; expected [D] and [D, D]"
        )
    for name, value in (("mu1", m1), ("mu2", m2), ("sigma1", s1), ("sigma2", s2)):
        if not bool(torch.isfinite(value).all()):
            raise ValueError(f"{name} contains NaN or infinite values")
    mean_term = float((m1 - m2).square().sum())
    trace_term = float(torch.trace(s1) + torch.trace(s2))
    return mean_term + trace_term - 2.0 * trace_sqrt_product(s1, s2)


class FeatureStatistics(StreamingMetric):
    """Streaming mean and covariance of feature vectors, exact in float64.

    `update(features [B, D])` adds rows; memory is O(groups * D^2) whatever the number of rows.
    Sums are kept around a shift (the first batch's mean) so the covariance does not lose
    precision to cancellation. With `groups > 1` the rows are dealt round-robin into groups
    whose statistics are kept apart, so a delete-a-group jackknife can give a standard error.
    `merge(other)` re-centres the other side's sums on this shift and continues the round-robin
    where this side stopped, so groups, mean and covariance equal one pass over both (rounding).
    """

    def __init__(self, dim: int, *, groups: int = 1) -> None:
        if dim < 1 or groups < 1:
            raise ValueError(f"dim and groups must be >= 1, got dim={dim}, groups={groups}")
        self.dim = dim
        self.groups = groups
        self.reset()

    def reset(self) -> None:
        self.shift: np.ndarray | None = None
        self.counts = np.zeros(self.groups, dtype=np.int64)
        self.sums = np.zeros((self.groups, self.dim), dtype=np.float64)
        self.products = np.zeros((self.groups, self.dim, self.dim), dtype=np.float64)
        self._next_group = 0

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    def update(self, features: ArrayLike) -> None:
        """Add feature rows: float [B, D]."""
        if isinstance(features, torch.Tensor):
            features = features.detach().to("cpu", torch.float64).numpy()
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"features must be [B, {self.dim}], got {list(x.shape)}")
        if not np.isfinite(x).all():
            raise ValueError("features contain NaN or infinite values")
        if x.shape[0] == 0:
            return
        if self.shift is None:
            self.shift = x.mean(axis=0)
        x = x - self.shift
        if self.groups == 1:
            self._add(0, x)
            return
        assignment = (self._next_group + np.arange(x.shape[0])) % self.groups
        self._next_group = int((self._next_group + x.shape[0]) % self.groups)
        for g in range(self.groups):
            rows = x[assignment == g]
            if rows.shape[0]:
                self._add(g, rows)

    def _add(self, group: int, centred: np.ndarray) -> None:
        self.counts[group] += centred.shape[0]
        self.sums[group] += centred.sum(axis=0)
        self.products[group] += centred.T @ centred

    def merge_key(self) -> dict[str, Any]:
        return {"dim": self.dim, "groups": self.groups}

    def merge(self, other: FeatureStatistics) -> None:
        self.check_mergeable(other)
        if other.shift is None:
            return
        if self.shift is None:
            self.shift = other.shift.copy()
        # Rows around other.shift, moved to self.shift: x - s = (x - s_o) + d with d = s_o - s.
        d = other.shift - self.shift
        counts = other.counts.astype(np.float64)
        sums = other.sums + counts[:, None] * d
        products = (
            other.products
            + other.sums[:, :, None] * d[None, None, :]
            + d[None, :, None] * other.sums[:, None, :]
            + counts[:, None, None] * np.outer(d, d)[None]
        )
        # The other side dealt its first row to group 0; one pass would have dealt it here.
        order = (self._next_group + np.arange(self.groups)) % self.groups
        self.counts[order] += other.counts
        self.sums[order] += sums
        self.products[order] += products
        self._next_group = int((self._next_group + other._next_group) % self.groups)

    def compute(self) -> GaussianStats:
        """The pooled (mu, sigma, n); EmptyMetricError with fewer than 2 rows."""
        return GaussianStats.from_statistics(self)

    def _moments(self, count: int, total: np.ndarray, products: np.ndarray):
        if count < 2:
            raise EmptyMetricError(f"need at least 2 feature vectors for a covariance, got {count}")
        mean_shifted = total / count
        cov = (products - count * np.outer(mean_shifted, mean_shifted)) / (count - 1)
        shift = self.shift if self.shift is not None else 0.0
        return mean_shifted + shift, (cov + cov.T) / 2

    def mean_cov(self) -> tuple[np.ndarray, np.ndarray]:
        """(mu [D], sigma [D, D]) with the unbiased (n - 1) covariance, as numpy.cov."""
        return self._moments(self.n, self.sums.sum(axis=0), self.products.sum(axis=0))

    def mean_cov_without_group(self, group: int) -> tuple[np.ndarray, np.ndarray]:
        keep = np.arange(self.groups) != group
        return self._moments(
            int(self.counts[keep].sum()),
            self.sums[keep].sum(axis=0),
            self.products[keep].sum(axis=0),
        )


@dataclass(frozen=True)
class GaussianStats:
    """Summary (mu [D], sigma [D, D], n) of a feature set, e.g. a cached reference set."""

    mu: np.ndarray
    sigma: np.ndarray
    n: int

    @classmethod
    def from_statistics(cls, stats: FeatureStatistics) -> GaussianStats:
        mu, sigma = stats.mean_cov()
        return cls(mu=mu, sigma=sigma, n=stats.n)


class FrechetDistanceMetric(StreamingMetric):
    """FD of streamed features against fixed reference statistics (FID, FVD, FD on CLIP, ...).

    The confidence interval is a delete-a-group jackknife over `groups` round-robin groups of the
    evaluated features (reference statistics held fixed): value ± t_{G-1} · SE_jackknife. It
    measures how much the score would move with another draw of the evaluated samples.
    """

    def __init__(
        self,
        reference: GaussianStats,
        *,
        metric: str,
        backbone: str,
        weights_sha256: str,
        groups: int = 10,
        confidence: float = 0.95,
        device: torch.device | str | None = None,
    ) -> None:
        self.reference = reference
        self.metric = metric
        self.backbone = backbone
        self.weights_sha256 = weights_sha256
        self.confidence = confidence
        self.device = device
        self.stats = FeatureStatistics(reference.mu.shape[0], groups=groups)

    def update(self, features: ArrayLike) -> None:
        """Add evaluated features: float [B, D]."""
        self.stats.update(features)

    def reset(self) -> None:
        self.stats.reset()

    def merge_key(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "backbone": self.backbone,
            "weights_sha256": self.weights_sha256,
            "confidence": self.confidence,
            "reference mu": self.reference.mu,
            "reference sigma": self.reference.sigma,
        }

    def merge(self, other: FrechetDistanceMetric) -> None:
        self.check_mergeable(other)
        self.stats.merge(other.stats)

    def compute(self) -> MetricValue:
        if self.stats.n < 2:
            raise EmptyMetricError(
                f"{self.metric} needs at least 2 evaluated samples, got {self.stats.n}"
            )
        ref = self.reference
        mu, sigma = self.stats.mean_cov()
        value = frechet_distance(mu, sigma, ref.mu, ref.sigma, device=self.device)
        lower = upper = None
        # With fewer rows than groups some groups are empty: jackknife over the non-empty ones.
        used = np.flatnonzero(self.stats.counts)
        groups = len(used)
        if groups > 1 and self.stats.n - int(self.stats.counts.max()) >= 2:
            leave_out = np.array(
                [
                    frechet_distance(
                        *self.stats.mean_cov_without_group(int(g)),
                        ref.mu,
                        ref.sigma,
                        device=self.device,
                    )
                    for g in used
                ]
            )
            se = float(np.sqrt((groups - 1) / groups * np.sum((leave_out - leave_out.mean()) ** 2)))
            half = float(scipy_stats.t.ppf(0.5 + self.confidence / 2, groups - 1)) * se
            lower, upper = max(value - half, 0.0), value + half
        return MetricValue(
            metric=self.metric,
            value=value,
            lower=lower,
            upper=upper,
            n=self.stats.n,
            backbone=self.backbone,
            weights_sha256=self.weights_sha256,
            details={"reference_n": ref.n, "ci": f"jackknife over {groups} groups"},
        )
