"""Style control (Bradley–Terry with covariates): arena-rank agreement, known truth, reductions."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from arena.ratings import (
    BradleyTerryOptions,
    StyleOptions,
    StyleVote,
    StyleVotes,
    fit_bradley_terry,
    fit_style_control,
)
from arena.ratings.votes import VoteFormatError

ALPHA = 400 / math.log(10)
COVARIATES = ["resolution", "brightness", "seconds"]


def normalised(xa: np.ndarray, xb: np.ndarray) -> np.ndarray:
    """LMArena's style features, written out independently: ratio difference, then z-score."""
    raw = (xa - xb) / (xa + xb)
    return (raw - raw.mean(axis=0)) / raw.std(axis=0)


def simulate(skills, beta, n_votes, rng, tie_rate=0.1, xa=None, xb=None):
    """Votes from P(a beats b) = sigmoid(theta_a - theta_b + beta . z), z = normalised(xa, xb)."""
    n = len(skills)
    a = rng.integers(0, n, n_votes)
    b = (a + rng.integers(1, n, n_votes)) % n
    if xa is None:
        xa = rng.gamma(4.0, 1.0, (n_votes, len(beta)))
        xb = rng.gamma(4.0, 1.0, (n_votes, len(beta)))
    z = normalised(xa, xb)
    p = 1 / (1 + np.exp(-(skills[a] - skills[b] + z @ beta)))
    tie = rng.random(n_votes) < tie_rate
    winner = np.where(tie, "tie", np.where(rng.random(n_votes) < p, "model_a", "model_b"))
    names = np.array([f"m{i:02d}" for i in range(n)])
    return names[a], names[b], winner, xa, xb


@pytest.mark.parametrize(
    ("reweighted", "reg"), [(False, 0.0), (True, 1.0)], ids=["plain", "reweighted-ridge"]
)
def test_agrees_with_arena_rank_contextual_bradley_terry(reweighted, reg):
    jnp = pytest.importorskip("jax.numpy", reason="arena-rank (dev extra) brings jax")
    contextual = pytest.importorskip("arena_rank.models.contextual_bradley_terry")
    data_utils = pytest.importorskip("arena_rank.utils.data_utils")
    rng = np.random.default_rng(7)
    skills = rng.normal(0, 1.0, 8)
    a, b, winner, xa, xb = simulate(skills, np.array([0.4, -0.25, 0.1]), 8000, rng)
    keep = rng.random(len(a)) < np.where(a < b, 1.0, 0.3)  # uneven pairs: reweighting matters
    a, b, winner, xa, xb = a[keep], b[keep], winner[keep], xa[keep], xb[keep]
    raw = (xa - xb) / (xa + xb)
    frame = pd.DataFrame({"model_a": a, "model_b": b, "winner": winner})
    for k, name in enumerate(COVARIATES):
        frame[name] = raw[:, k]
    dataset = data_utils.ContextualPairDataset.from_pandas(frame, COVARIATES, reweighted=reweighted)
    model = contextual.ContextualBradleyTerry(
        n_competitors=len(dataset.competitors), n_features=3, reg=reg
    )
    theirs = model.compute_ratings_and_cis(dataset, significance_level=0.05)

    votes = StyleVotes.from_columns(a, b, winner, xa, xb, COVARIATES)
    ours = fit_style_control(
        votes, BradleyTerryOptions(reweight=reweighted), StyleOptions(coef_ridge=reg)
    )
    assert list(ours.models) == list(theirs["competitors"])
    # arena-rank's ratings are centred too (its L-BFGS never moves the sum of theta).
    gap = np.abs(np.asarray(theirs["ratings"]) - ours.ratings).max()
    assert gap < 0.05, f"ratings differ from arena-rank by {gap:.4f} points"
    coef_gap = np.abs(np.asarray(theirs["coeffs"]) - ours.coefficients).max()
    assert coef_gap < 1e-4, f"coefficients differ by {coef_gap:.2e} logits"
    width = ours.upper - ours.lower
    for key, mine in (("rating_lower", ours.lower), ("rating_upper", ours.upper)):
        rel = np.abs(np.asarray(theirs[key]) - mine) / width
        assert rel.max() < 0.01, f"{key} differs by {rel.max():.2%} of the interval width"
    assert np.allclose(np.asarray(theirs["variances"]), ours.variance, rtol=0.02)
    assert jnp is not None


def test_simulation_recovers_known_coefficients_and_skills():
    rng = np.random.default_rng(0)
    skills = np.linspace(-1.2, 1.2, 8)
    beta = np.array([0.5, -0.3, 0.0])
    fit = fit_style_control(
        StyleVotes.from_columns(*simulate(skills, beta, 40_000, rng, tie_rate=0.0), COVARIATES)
    )
    se = np.sqrt(fit.coef_variance)
    assert (np.abs(fit.coefficients - beta) < 3 * se).all(), (fit.coefficients, se)
    assert ((fit.coef_lower[:2] > 0) | (fit.coef_upper[:2] < 0)).all()  # clearly non-zero
    truth = 1000 + ALPHA * (skills - skills.mean())
    error = np.abs(fit.ratings - truth)
    assert (error < 3.5 * np.sqrt(fit.variance)).all(), error
    assert list(fit.rank) == list(range(8, 0, -1))
    rows = fit.coefficient_table()
    assert [r["covariate"] for r in rows] == COVARIATES
    assert rows[0]["points"] == pytest.approx(ALPHA * fit.coefficients[0])


def test_bootstrap_intervals_agree_with_sandwich_intervals():
    rng = np.random.default_rng(12)
    data = simulate(np.linspace(-1, 1, 5), np.array([0.4, 0.0, -0.2]), 5000, rng)
    votes = StyleVotes.from_columns(*data, COVARIATES)
    sandwich = fit_style_control(votes)
    boot = fit_style_control(
        votes, BradleyTerryOptions(ci="bootstrap", bootstrap_rounds=300, seed=1)
    )
    assert np.allclose(boot.ratings, sandwich.ratings) and boot.bootstrap_samples.shape == (300, 5)
    ratio = np.sqrt(boot.variance / sandwich.variance)
    assert np.all((ratio > 0.8) & (ratio < 1.25)), ratio
    coef_ratio = np.sqrt(boot.coef_variance / sandwich.coef_variance)
    assert np.all((coef_ratio > 0.8) & (coef_ratio < 1.25)), coef_ratio


def test_covariates_equal_on_both_sides_give_exactly_the_plain_fit():
    rng = np.random.default_rng(5)
    a, b, winner, xa, _ = simulate(rng.normal(0, 1, 6), np.zeros(3), 3000, rng, tie_rate=0.2)
    winner = np.where((winner == "tie") & (rng.random(len(winner)) < 0.5), "both_bad", winner)
    votes = StyleVotes.from_columns(a, b, winner, xa, xa.copy(), COVARIATES)
    for options in (BradleyTerryOptions(), BradleyTerryOptions(both_bad="drop", reweight=True)):
        styled = fit_style_control(votes, options)
        plain = fit_bradley_terry(votes.aggregated(), options)
        assert styled.flags == [f"constant_covariate:{c}" for c in COVARIATES]
        assert np.all(styled.coefficients == 0)
        assert np.abs(styled.ratings - plain.ratings).max() < 1e-8
        # Intervals agree to float noise (the ridge's 1/r^2 amplifies rounding along theta + c;
        # reweighted, the ridge follows arena-rank's contextual model rather than its plain one).
        tol = 1e-4 * (plain.upper - plain.lower) if options.reweight else 1e-5
        assert (np.abs(styled.lower - plain.lower) < tol).all()
        assert (np.abs(styled.upper - plain.upper) < tol).all()
        assert list(styled.rank_ub) == list(plain.rank_ub)


def test_covariates_that_do_not_matter_leave_the_plain_ratings():
    rng = np.random.default_rng(9)
    data = simulate(rng.normal(0, 1, 10), np.zeros(3), 20_000, rng)
    votes = StyleVotes.from_columns(*data, COVARIATES)
    styled = fit_style_control(votes)
    plain = fit_bradley_terry(votes.aggregated())
    assert ((styled.coef_lower < 0) & (0 < styled.coef_upper)).all()
    shift = np.abs(styled.ratings - plain.ratings) / (plain.upper - plain.lower)
    assert shift.max() < 0.1, f"ratings moved by {shift.max():.2%} of the interval width"


def test_style_control_removes_an_advantage_that_comes_from_brightness():
    rng = np.random.default_rng(21)
    n_votes, n = 30_000, 6
    skills = np.array([0.3, 0.2, 0.1, 0.0, -0.1, 0.0])  # m05 "glossy" is mid-table in truth
    a = rng.integers(0, n, n_votes)
    b = (a + rng.integers(1, n, n_votes)) % n
    # Brightness of each side's sample: m05 renders much brighter images than anyone else.
    xa = np.column_stack([rng.uniform(0.3, 0.6, n_votes), rng.uniform(0.5, 1.5, n_votes)])
    xb = np.column_stack([rng.uniform(0.3, 0.6, n_votes), rng.uniform(0.5, 1.5, n_votes)])
    xa[a == 5, 0] += 0.3
    xb[b == 5, 0] += 0.3
    beta = np.array([0.9, 0.0])
    z = normalised(xa, xb)
    p = 1 / (1 + np.exp(-(skills[a] - skills[b] + z @ beta)))
    winner = np.where(rng.random(n_votes) < p, "model_a", "model_b")
    names = np.array([f"m{i:02d}" for i in range(n)])
    votes = [
        StyleVote(
            names[a[i]],
            names[b[i]],
            winner[i],
            {"brightness": xa[i, 0], "seconds": xa[i, 1]},
            {"brightness": xb[i, 0], "seconds": xb[i, 1]},
        )
        for i in range(n_votes)
    ]
    styled = fit_style_control(votes)
    plain = fit_bradley_terry(StyleVotes.from_votes(votes).aggregated())
    glossy = 5
    # Without control, brightness makes m05 the clear #1.
    assert plain.rank[glossy] == 1 and plain.rank_ub[glossy] == 1
    assert plain.lower[glossy] > np.delete(plain.upper, glossy).max()
    # With control it is back to its true place, and brightness takes the credit.
    truth = 1000 + ALPHA * (skills - skills.mean())
    assert abs(styled.ratings[glossy] - truth[glossy]) < 2.5 * math.sqrt(styled.variance[glossy])
    assert styled.rank[glossy] >= 3 and styled.rank_ub[glossy] > 1
    assert styled.covariates == ("brightness", "seconds")
    assert styled.coef_lower[0] > 0.5 and styled.coef_lower[1] < 0 < styled.coef_upper[1]
    assert abs(styled.coefficients[0] - 0.9) < 3 * math.sqrt(styled.coef_variance[0])


def test_anchor_and_input_errors():
    rng = np.random.default_rng(2)
    a, b, winner, xa, xb = simulate(rng.normal(0, 1, 4), np.array([0.3, 0, 0]), 2000, rng)
    votes = StyleVotes.from_columns(a, b, winner, xa, xb, COVARIATES)
    centred = fit_style_control(votes)
    anchored = fit_style_control(votes, BradleyTerryOptions(anchor=("m01", 1200.0)))
    assert anchored.ratings[1] == pytest.approx(1200.0) and anchored.variance[1] == 0
    shift = centred.ratings - anchored.ratings
    assert np.allclose(shift, shift[0]) and np.allclose(anchored.coefficients, centred.coefficients)
    with pytest.raises(ValueError, match="anchor model 'zz'"):
        fit_style_control(votes, BradleyTerryOptions(anchor=("zz", 0.0)))
    with pytest.raises(VoteFormatError, match="row 1: covariates_b has no covariate 'y'"):
        StyleVotes.from_columns(
            ["p", "p"], ["q", "q"], ["tie", "tie"], [{"y": 1}, {"y": 2}], [{"y": 1}, {}]
        )
    with pytest.raises(ValueError, match="relative"):
        fit_style_control(StyleVotes.from_columns(a, b, winner, xa - 5, xb, COVARIATES))
    absolute = fit_style_control(
        StyleVotes.from_columns(a, b, winner, xa - 5, xb - 5, COVARIATES),
        style=StyleOptions(relative=False),
    )
    assert absolute.flags == [] and not absolute.relative.any()
