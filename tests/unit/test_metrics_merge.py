"""The streaming-metric contract: update / compute / reset / merge, for every metric and state."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from evaluation.metrics.clip_score import CLIPScore
from evaluation.metrics.cmmd import CMMD
from evaluation.metrics.contract import EmptyMetricError, StreamingMetric
from evaluation.metrics.frechet import FeatureStatistics, FrechetDistanceMetric, GaussianStats
from evaluation.metrics.kid import KernelInceptionDistance
from evaluation.metrics.prompt_agreement import PromptAgreement
from evaluation.metrics.reservoir import FeatureReservoir
from evaluation.metrics.result import MetricValue
from models_registry.generators.quality import IMAGE_ATTRIBUTES, SampleCheck

DIM = 6
IDS = dict(backbone="toy", weights_sha256="0" * 64)
REFERENCE = np.random.default_rng(1).normal(size=(40, DIM))


def _gaussian(features: np.ndarray) -> GaussianStats:
    stats = FeatureStatistics(DIM)
    stats.update(features)
    return stats.compute()


# name -> (new instance, how a batch [B, 2 * DIM] is fed to it)
def _features(metric, batch):
    metric.update(batch[:, :DIM])


def _pairs(metric, batch):
    pairs = torch.from_numpy(batch)
    metric.update(pairs[:, :DIM], pairs[:, DIM:])


def _checks(metric, batch):
    """Per-sample checks read off the batch: attribute k shown when column k exceeds column
    DIM + k; about one row in four stands for a prompt outside the synthetic grammar (None)."""
    checks = []
    for row in batch:
        if int(abs(row[-1]) * 10) % 4 == 0:
            checks.append(None)
            continue
        shown = {name: bool(row[k] > row[DIM + k]) for k, name in enumerate(IMAGE_ATTRIBUTES)}
        checks.append(SampleCheck(sum(shown.values()) / len(shown), shown, read={}))
    metric.update(checks)


CASES = {
    "feature statistics": (lambda: FeatureStatistics(DIM, groups=3), _features),
    "feature reservoir": (lambda: FeatureReservoir(DIM, capacity=100, seed=3), _features),
    "frechet distance": (
        lambda: FrechetDistanceMetric(_gaussian(REFERENCE), metric="fid", groups=3, **IDS),
        _features,
    ),
    "kid": (
        lambda: KernelInceptionDistance(REFERENCE, subsets=5, subset_size=10, capacity=100, **IDS),
        _features,
    ),
    "cmmd": (lambda: CMMD(REFERENCE, bootstrap=5, capacity=100, **IDS), _features),
    "clip score": (lambda: CLIPScore(**IDS), _pairs),
    "prompt agreement": (lambda: PromptAgreement(**IDS), _checks),
}


def _batches():
    rng = np.random.default_rng(0)
    # Odd sizes (the round-robin of groups does not restart at 0) and a far-off second half (the
    # other side's shift differs from this side's).
    first = rng.normal(size=(13, 2 * DIM))
    second = rng.normal(loc=50.0, scale=3.0, size=(22, 2 * DIM))
    return first, second


def _state(metric):
    """What a metric reports, in comparable form."""
    if isinstance(metric, FeatureStatistics):
        return {
            "counts": metric.counts.copy(),
            "pooled": metric.mean_cov(),
            "without each group": [metric.mean_cov_without_group(g) for g in range(metric.groups)],
        }
    result = metric.compute()
    if isinstance(result, MetricValue):
        return dataclasses.asdict(result)
    return result


def _assert_close(a, b, path="state"):
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for key in a:
            _assert_close(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for k, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_close(x, y, f"{path}[{k}]")
    elif isinstance(a, (np.ndarray, float)):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9, err_msg=path)
    else:
        assert a == b, path


@pytest.mark.parametrize("name", CASES)
def test_every_metric_follows_the_contract(name):
    new, _ = CASES[name]
    assert isinstance(new(), StreamingMetric)


@pytest.mark.parametrize("name", CASES)
def test_merging_two_halves_equals_one_pass_over_both(name):
    new, feed = CASES[name]
    first, second = _batches()
    one_pass = new()
    feed(one_pass, first)
    feed(one_pass, second)
    left, right = new(), new()
    feed(left, first)
    feed(right, second)
    right_before = _state(right)
    left.merge(right)
    _assert_close(_state(left), _state(one_pass))
    _assert_close(_state(right), right_before)  # the other side is left unchanged


@pytest.mark.parametrize("name", CASES)
def test_merging_with_an_empty_side_changes_nothing(name):
    new, feed = CASES[name]
    first, _ = _batches()
    alone, into_empty, with_empty = new(), new(), new()
    feed(alone, first)
    feed(with_empty, first)
    with_empty.merge(new())
    into_empty.merge(alone)
    _assert_close(_state(with_empty), _state(alone))
    _assert_close(_state(into_empty), _state(alone))


@pytest.mark.parametrize("name", CASES)
def test_compute_on_an_empty_metric_raises_a_clear_error(name):
    new, _ = CASES[name]
    with pytest.raises(EmptyMetricError, match=r"at least|no rows"):
        new().compute()


@pytest.mark.parametrize("name", CASES)
def test_reset_returns_to_the_empty_state(name):
    new, feed = CASES[name]
    first, second = _batches()
    metric = new()
    feed(metric, first)
    metric.reset()
    with pytest.raises(EmptyMetricError):
        metric.compute()
    feed(metric, second)
    fresh = new()
    feed(fresh, second)
    _assert_close(_state(metric), _state(fresh))


def test_only_alike_states_merge():
    fid = CASES["frechet distance"][0]()
    other_reference = FrechetDistanceMetric(
        _gaussian(REFERENCE + 1.0), metric="fid", groups=3, **IDS
    )
    with pytest.raises(ValueError, match="different reference mu"):
        fid.merge(other_reference)
    with pytest.raises(ValueError, match="different groups"):
        FeatureStatistics(DIM, groups=3).merge(FeatureStatistics(DIM, groups=2))
    with pytest.raises(TypeError, match="same metric class"):
        fid.merge(CLIPScore(**IDS))
    with pytest.raises(ValueError, match="different capacity"):
        FeatureReservoir(DIM, capacity=10).merge(FeatureReservoir(DIM, capacity=20))


def test_a_merged_full_reservoir_is_a_uniform_sample_of_the_union():
    """Above capacity a merge cannot equal one pass (other rows are dropped); what it guarantees
    is a uniform sample without replacement of the union: each row kept with probability
    capacity / (n_a + n_b), whichever side it came from."""
    n_a, n_b, capacity, trials = 30, 70, 20, 2000
    rows_a = np.arange(n_a, dtype=np.float64)[:, None]
    rows_b = np.arange(n_a, n_a + n_b, dtype=np.float64)[:, None]
    kept = np.zeros(n_a + n_b)
    from_a = []
    for seed in range(trials):
        left = FeatureReservoir(1, capacity=capacity, seed=seed)
        right = FeatureReservoir(1, capacity=capacity, seed=seed + trials)
        left.update(rows_a)
        right.update(rows_b)
        left.merge(right)
        ids = left.features[:, 0].astype(int)
        assert left.n_seen == n_a + n_b and len(set(ids)) == capacity  # no row twice
        kept[ids] += 1
        from_a.append(int((ids < n_a).sum()))
    assert np.abs(kept / trials - capacity / (n_a + n_b)).max() < 0.05
    assert abs(np.mean(from_a) - capacity * n_a / (n_a + n_b)) < 0.2
    # Streaming continues over the combined count.
    left.update(np.full((5, 1), -1.0))
    assert left.n_seen == n_a + n_b + 5 and left.features.shape == (capacity, 1)


def test_merged_statistics_deal_groups_as_one_pass_would():
    rng = np.random.default_rng(2)
    parts = [rng.normal(size=(n, DIM)) for n in (5, 7, 4)]
    one_pass = FeatureStatistics(DIM, groups=4)
    merged = FeatureStatistics(DIM, groups=4)
    for part in parts:
        one_pass.update(part)
        shard = FeatureStatistics(DIM, groups=4)
        shard.update(part)
        merged.merge(shard)
    np.testing.assert_array_equal(merged.counts, one_pass.counts)
    for g in range(4):
        _assert_close(merged.mean_cov_without_group(g), one_pass.mean_cov_without_group(g))
