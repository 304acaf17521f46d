"""KID, CMMD, CLIP score and the reservoir sample, against peers and direct formulas."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchmetrics.image.kid import KernelInceptionDistance as TorchmetricsKID

from evaluation.metrics.clip_score import CLIPScore
from evaluation.metrics.cmmd import CMMD
from evaluation.metrics.kid import KernelInceptionDistance
from evaluation.metrics.reservoir import FeatureReservoir

IDS = dict(backbone="test-backbone", weights_sha256="ab" * 32)


class Identity(torch.nn.Module):
    """torchmetrics feature hook: the 'images' are already feature vectors."""

    num_features = 16

    def forward(self, x):
        return x


def test_kid_equals_torchmetrics_with_the_same_subsets():
    rng = np.random.default_rng(0)
    real = rng.standard_normal((120, 16))
    fake = rng.standard_normal((90, 16)) * 1.1 + 0.2
    peer = TorchmetricsKID(feature=Identity(), subsets=20, subset_size=50)
    peer.update(torch.from_numpy(real), real=True)
    peer.update(torch.from_numpy(fake), real=False)
    torch.manual_seed(123)
    peer_mean, peer_std = peer.compute()

    ours = KernelInceptionDistance(real, subsets=20, subset_size=50, **IDS)
    for chunk in np.array_split(fake, 4):
        ours.update(chunk)
    result = ours.compute(generator=torch.Generator().manual_seed(123))
    assert result.value == pytest.approx(float(peer_mean), rel=1e-10)
    assert result.details["std"] == pytest.approx(float(peer_std), rel=1e-8)
    assert result.lower == pytest.approx(result.value - result.details["std"])
    assert result.n == 90 and result.backbone == "test-backbone"


def test_kid_is_near_zero_for_one_distribution_and_positive_under_shift():
    rng = np.random.default_rng(1)
    real = rng.standard_normal((400, 8))
    same = KernelInceptionDistance(real, subsets=10, subset_size=200, **IDS)
    same.update(rng.standard_normal((400, 8)))
    shifted = KernelInceptionDistance(real, subsets=10, subset_size=200, **IDS)
    shifted.update(rng.standard_normal((400, 8)) + 1.0)
    assert abs(same.compute().value) < 0.02 < shifted.compute().value


def direct_unbiased_cmmd(x, y, sigma=10.0, scale=1000.0):
    """O(n^2) numpy reference: the paper's Gaussian-RBF MMD^2 with the diagonals removed."""

    def k(a, b):
        d2 = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
        return np.exp(-d2 / (2 * sigma**2))

    n, m = len(x), len(y)
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    return scale * (
        (kxx.sum() - np.trace(kxx)) / (n * (n - 1))
        + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        - 2 * kxy.mean()
    )


def unit_rows(a):
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def test_cmmd_equals_the_direct_quadratic_formula():
    rng = np.random.default_rng(2)
    x = unit_rows(rng.standard_normal((70, 12)) + 0.5)
    y = unit_rows(rng.standard_normal((55, 12)))
    metric = CMMD(y, bootstrap=0, **IDS)
    metric.update(x[:30])
    metric.update(x[30:])
    assert metric.compute().value == pytest.approx(direct_unbiased_cmmd(x, y), rel=1e-10)


def test_cmmd_is_near_zero_for_one_distribution_and_grows_with_shift():
    rng = np.random.default_rng(3)
    base = rng.standard_normal((300, 16))
    reference = unit_rows(base)
    values = []
    for shift in (0.0, 0.5, 1.0, 2.0):
        metric = CMMD(reference, bootstrap=50, **IDS)
        sample = rng.standard_normal((300, 16))
        sample[:, 0] += shift
        metric.update(unit_rows(sample))
        result = metric.compute()
        assert result.lower <= result.value <= result.upper
        values.append(result.value)
    assert abs(values[0]) < 0.5 * (values[1] - values[0])
    assert values == sorted(values)


def test_clip_score_is_the_clamped_cosine_formula():
    image = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    text = torch.tensor([[1.0, 1.0], [0.0, 1.0], [-1.0, -1.0]])
    metric = CLIPScore(**IDS)
    metric.update(image[:2], text[:2])
    metric.update(image[2:], text[2:])
    per_pair = np.array([100 / np.sqrt(2), 100.0, 0.0])  # cos 45°, cos 0°, negative -> 0
    result = metric.compute()
    assert result.value == pytest.approx(per_pair.mean())
    se = per_pair.std(ddof=1) / np.sqrt(3)
    assert result.upper - result.value == pytest.approx(4.302652729911275 * se)  # t(0.975, 2)
    with pytest.raises(ValueError, match="both be"):
        metric.update(image, text[:2])


def test_reservoir_keeps_everything_below_capacity_and_samples_uniformly_above():
    small = FeatureReservoir(1, capacity=10)
    small.update(np.arange(7.0)[:, None])
    assert small.features[:, 0].tolist() == list(range(7))
    kept_means = []
    for seed in range(200):
        reservoir = FeatureReservoir(1, capacity=50, seed=seed)
        for chunk in np.array_split(np.arange(1000.0)[:, None], 13):
            reservoir.update(chunk)
        assert reservoir.features.shape == (50, 1) and reservoir.n_seen == 1000
        kept_means.append(reservoir.features.mean())
    # Uniform sample of 50 from 0..999: mean 499.5, sd of the mean ~ 288.7 / sqrt(50) / sqrt(200).
    assert np.mean(kept_means) == pytest.approx(499.5, abs=4 * 288.7 / np.sqrt(50 * 200))
