"""Fréchet distance: closed forms, agreement with scipy and torchmetrics, streaming statistics."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
from torchmetrics.image.fid import _compute_fid

from evaluation.metrics.frechet import (
    FeatureStatistics,
    FrechetDistanceMetric,
    GaussianStats,
    frechet_distance,
)


def scipy_frechet(mu1, s1, mu2, s2) -> float:
    """pytorch-fid / clean-fid formula."""
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    return float(
        ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean.real)
    )


def random_spd(rng, d, rank=None):
    factor = rng.standard_normal((d, rank or 2 * d)) / np.sqrt(rank or 2 * d)
    return factor @ factor.T


def test_commuting_gaussians_match_closed_form():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0.1, 3, 16), rng.uniform(0.1, 3, 16)
    mu1, mu2 = rng.standard_normal(16), rng.standard_normal(16)
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-12)


def test_identity_against_general_covariance_matches_eigenvalue_closed_form():
    rng = np.random.default_rng(1)
    s2 = random_spd(rng, 32)
    eig = np.linalg.eigvalsh(s2)
    expected = 32 + eig.sum() - 2 * np.sqrt(eig).sum()  # tr(I) + tr(S) - 2 tr S^(1/2)
    assert frechet_distance(np.zeros(32), np.eye(32), np.zeros(32), s2) == pytest.approx(
        expected, rel=1e-10
    )


def test_identical_statistics_give_zero():
    rng = np.random.default_rng(2)
    s = random_spd(rng, 256)
    mu = rng.standard_normal(256)
    assert abs(frechet_distance(mu, s, mu, s)) < 1e-9 * np.trace(s)


def test_singular_covariances_fewer_samples_than_dimensions():
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((20, 64)), rng.standard_normal((20, 64)) + 0.3
    args = (x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
    ours = frechet_distance(*args)
    reference = float(_compute_fid(*(torch.from_numpy(a) for a in args)))
    assert ours == pytest.approx(reference, rel=1e-6)


@pytest.mark.slow  # scipy's sqrtm and torchmetrics' general eigensolver take ~20 s at d = 2048
def test_agrees_with_scipy_and_torchmetrics_at_2048_dimensions():
    rng = np.random.default_rng(4)
    d = 2048
    mu1, mu2 = rng.standard_normal(d) * 0.1, rng.standard_normal(d) * 0.1
    s1, s2 = random_spd(rng, d, rank=3000), random_spd(rng, d, rank=3000)
    ours = frechet_distance(mu1, s1, mu2, s2)
    torchmetrics_value = float(_compute_fid(*(torch.from_numpy(a) for a in (mu1, s1, mu2, s2))))
    assert ours == pytest.approx(torchmetrics_value, rel=1e-6)
    assert ours == pytest.approx(scipy_frechet(mu1, s1, mu2, s2), rel=1e-6)


def test_bad_shapes_and_values_are_rejected():
    with pytest.raises(ValueError, match="shape mismatch"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(np.array([np.nan, 0]), np.eye(2), np.zeros(2), np.eye(2))


def test_streaming_statistics_equal_numpy_even_with_a_large_offset():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1000, 8)) * 0.01 + 1e4  # cancellation would ruin naive sums
    stats = FeatureStatistics(8, groups=3)
    for chunk in np.array_split(x, [1, 7, 300, 301, 999]):
        stats.update(chunk)
    mu, sigma = stats.mean_cov()
    assert stats.n == 1000
    np.testing.assert_allclose(mu, x.mean(0), rtol=1e-14)
    np.testing.assert_allclose(sigma, np.cov(x, rowvar=False), rtol=1e-8, atol=1e-14)
    with pytest.raises(ValueError, match=r"\[B, 8\]"):
        stats.update(np.zeros((2, 7)))


def test_jackknife_standard_error_matches_spread_over_repeated_draws():
    """Simulation with known truth: the CI half-width tracks the real sampling spread."""
    rng = np.random.default_rng(6)
    d, n = 4, 400
    reference = GaussianStats(mu=np.zeros(d), sigma=np.eye(d), n=10**6)
    values, half_widths = [], []
    for _ in range(150):
        metric = FrechetDistanceMetric(
            reference, metric="fd", backbone="test", weights_sha256="0" * 64, groups=10
        )
        metric.update(rng.standard_normal((n, d)) * 1.2 + 0.5)
        result = metric.compute()
        values.append(result.value)
        half_widths.append((result.upper - result.lower) / 2)
    empirical_sd = np.std(values, ddof=1)
    implied_sd = np.median(half_widths) / 2.262  # t(0.975, 9)
    assert 0.6 < implied_sd / empirical_sd < 1.6
    true_fd = d * 0.25 + d * (1.2 - 1.0) ** 2
    assert abs(np.mean(values) - true_fd) < 0.1  # consistent (bias O(d / n))
